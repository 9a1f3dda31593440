package clustertest

import (
	"net"
	"os"
	"strconv"
	"testing"
)

func TestOutside(t *testing.T) {
	for _, tt := range []struct {
		name              string
		elo, ehi          int
		wantLow, wantHigh int
		wantErr           bool
	}{
		{"Linux's default range lies above", 32768, 60999, 20000, 32767, false},
		{"a range starting lower cuts the window", 30000, 60999, 20000, 29999, false},
		{"a range inside the window keeps the larger side", 21000, 22000, 22001, 32767, false},
		{"a range below the window", 1024, 4999, 20000, 32767, false},
		{"a range covering the window", 1024, 65535, 0, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			low, high, err := outside(portsLow, portsHigh, tt.elo, tt.ehi)
			if (err != nil) != tt.wantErr || low != tt.wantLow || high != tt.wantHigh {
				t.Errorf("= %d–%d, %v; want %d–%d (error %v)", low, high, err, tt.wantLow, tt.wantHigh, tt.wantErr)
			}
		})
	}
}

// TestPortPool: ports outside the ephemeral range, never one twice, never
// one something listens on.
func TestPortPool(t *testing.T) {
	b, err := os.ReadFile(ephemeralRangeFile)
	if err != nil {
		t.Skipf("no %s: %v", ephemeralRangeFile, err)
	}
	elo, ehi, ok := parsePortRange(string(b))
	if !ok {
		t.Fatalf("%s: %q", ephemeralRangeFile, b)
	}
	pp, err := NewPorts()
	if err != nil {
		t.Fatal(err)
	}
	// Something listens on the port the pool would try next.
	busy, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(pp.next))
	if err != nil {
		t.Skipf("port %d: %v", pp.next, err)
	}
	defer busy.Close()
	seen := map[int]bool{}
	for range 50 {
		port, err := pp.Take()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case seen[port]:
			t.Fatalf("port %d handed out twice", port)
		case port >= elo && port <= ehi:
			t.Fatalf("port %d is in the ephemeral range %d–%d", port, elo, ehi)
		case port == busy.Addr().(*net.TCPAddr).Port:
			t.Fatalf("port %d is in use", port)
		}
		seen[port] = true
	}
}
