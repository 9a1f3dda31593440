package ingest

import (
	"io"
	"sync"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
)

// What every stored request would otherwise allocate again: the body's
// buffer, the message that carries it and its headers, and the event's
// subject. BenchmarkServeWebhook measures the path.

// pooledBody is the largest body buffer kept for reuse: provider events are
// a few hundred bytes, and a rare large body's buffer goes to the collector
// rather than staying in the pool.
const pooledBody = 64 << 10

// bodyBuf is a request body read into a buffer of the pool.
type bodyBuf struct{ b []byte }

// bodyPool reuses request body buffers. Safe for concurrent use.
type bodyPool struct{ pool sync.Pool }

func newBodyPool() *bodyPool {
	return &bodyPool{pool: sync.Pool{New: func() any { return &bodyBuf{b: make([]byte, 0, 1024)} }}}
}

// read reads r to its end as io.ReadAll does, into a pooled buffer sized by
// the request's Content-Length when it gives one that is small enough (a
// larger claim is not believed before the bytes arrive). The buffer is
// returned also with an error: put it back either way.
func (p *bodyPool) read(r io.Reader, contentLength int64) (*bodyBuf, error) {
	buf := p.pool.Get().(*bodyBuf)
	b := buf.b[:0]
	if want := int(min(contentLength, pooledBody)) + 1; contentLength > 0 && cap(b) < want {
		b = make([]byte, 0, want) // +1: the read that finds the end
	}
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			buf.b = b
			return buf, nil
		}
		if err != nil {
			buf.b = b
			return buf, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// put returns a buffer to the pool; nothing may refer to its bytes after.
func (p *bodyPool) put(buf *bodyBuf) {
	if buf == nil || cap(buf.b) > pooledBody {
		return
	}
	buf.b = buf.b[:0]
	p.pool.Put(buf)
}

// outMsg is the message of one publish and the backing array of its
// headers' values (each header's slice is one element of it, capped).
type outMsg struct {
	msg  nats.Msg
	vals [5]string
}

// msgPool reuses the messages ingest publishes, with their header maps: a
// stored request otherwise allocates the message, the map and its values
// anew (BenchmarkServeWebhook). A message comes back empty, headers
// included, so nothing of one event reaches the next: a stale Nats-Msg-Id
// would have JetStream drop a new event as a duplicate. Safe for concurrent
// use.
type msgPool struct{ pool sync.Pool }

func newMsgPool() *msgPool {
	return &msgPool{pool: sync.Pool{New: func() any { return &outMsg{msg: nats.Msg{Header: make(nats.Header, 6)}} }}}
}

func (p *msgPool) get() *outMsg { return p.pool.Get().(*outMsg) }

// put empties o and returns it; nothing may refer to o after (the NATS
// client has encoded what it sends by the time PublishMsg returns).
func (p *msgPool) put(o *outMsg) {
	hdr := o.msg.Header
	clear(hdr)
	*o = outMsg{msg: nats.Msg{Header: hdr}}
	p.pool.Put(o)
}

// eventSubjects are the subjects of the event types, made once.
type eventSubjects struct {
	names stream.Names
	by    map[event.Type]string
}

func newEventSubjects(names stream.Names) eventSubjects {
	s := eventSubjects{names: names, by: map[event.Type]string{}}
	for _, t := range event.Types {
		s.by[t] = names.EventSubject(t)
	}
	return s
}

// event is names.EventSubject(t).
func (s eventSubjects) event(t event.Type) string {
	if subj, ok := s.by[t]; ok {
		return subj
	}
	return s.names.EventSubject(t)
}
