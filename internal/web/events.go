package web

import (
	"net/http"
	"time"
)

// run answers the board's state as JSON, for a page that cannot stream.
func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	if s.opt.Board == nil {
		fail(w, http.StatusNotFound, "no training run to show")
		return
	}
	data, _ := s.opt.Board.snapshot()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(data)
}

// events streams the board as Server-Sent Events: the whole state at once,
// then again after each change, at most one event per EventEvery. A whole
// state is a few KiB even for a long run, and it lets a page that
// reconnects, or opens late, draw everything from one event.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	b := s.opt.Board
	if b == nil {
		fail(w, http.StatusNotFound, "no training run to show")
		return
	}
	rc := http.NewResponseController(w)
	// The server's read and write timeouts count from the request's start
	// and would end a stream that is meant to last the run; this stream
	// bounds each event's write instead. (The read deadline also governs
	// the server's watch for the client hanging up.)
	if err := rc.SetReadDeadline(time.Time{}); err != nil {
		fail(w, http.StatusInternalServerError, "cannot stream events on this connection")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	ctx := r.Context()
	for {
		data, changed := b.snapshot()
		if err := rc.SetWriteDeadline(time.Now().Add(s.opt.Timeouts.Write)); err != nil {
			return
		}
		if _, err := w.Write(append(append([]byte("event: state\ndata: "), data...), '\n', '\n')); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
		select {
		case <-time.After(s.opt.EventEvery):
		case <-ctx.Done():
			return
		}
	}
}
