package ingest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBodyPoolRead: a pooled read returns exactly the body, whatever the
// Content-Length claims and whatever a buffer held before; a body over the
// limit is the MaxBytesReader's error, as io.ReadAll gave it.
func TestBodyPoolRead(t *testing.T) {
	p := newBodyPool()
	for _, tt := range []struct {
		name          string
		size          int
		contentLength int64
	}{
		{"empty", 0, 0},
		{"one byte", 1, 1},
		{"unknown length", 700, -1},
		{"exact", 1023, 1023},
		{"length claims less", 5000, 10},
		{"length claims more", 300, 200_000},
		{"beyond the pooled size", 70_000, 70_000},
		{"beyond the pooled size, unknown length", 70_000, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A buffer used before holds other bytes: none may show.
			prev, err := p.read(strings.NewReader(strings.Repeat("z", 2000)), 2000)
			if err != nil {
				t.Fatal(err)
			}
			p.put(prev)
			want := bytes.Repeat([]byte("0123456789abcdef"), tt.size/16+1)[:tt.size]
			// iotest-like: a reader that hands out a few bytes at a time.
			buf, err := p.read(&trickle{r: bytes.NewReader(want)}, tt.contentLength)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.b, want) {
				t.Fatalf("read %d bytes, want %d (equal prefix: %v)", len(buf.b), len(want), bytes.HasPrefix(want, buf.b))
			}
			p.put(buf)
		})
	}
	t.Run("over the limit", func(t *testing.T) {
		w := httptest.NewRecorder()
		body := strings.Repeat("x", 2048)
		buf, err := p.read(http.MaxBytesReader(w, io.NopCloser(strings.NewReader(body)), 1024), int64(len(body)))
		defer p.put(buf)
		if mbe := (*http.MaxBytesError)(nil); !errors.As(err, &mbe) {
			t.Fatalf("err %v, want *http.MaxBytesError", err)
		}
	})
}

// trickle reads at most 100 bytes a call, as a slow connection does.
type trickle struct{ r io.Reader }

func (t *trickle) Read(p []byte) (int, error) { return t.r.Read(p[:min(len(p), 100)]) }
