package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"
)

//go:embed assets
var assets embed.FS

// Options configure a Server. The zero value of a field means its default.
type Options struct {
	// Model answers the drawing page; nil leaves the page off until
	// SetModel gives one.
	Model *Model
	// Board feeds the dashboard; nil leaves it off.
	Board *Board
	// MaxUploadBytes bounds an image sent for prediction (default 8 MiB:
	// a phone's photo fits, a canvas's PNG is a few KiB).
	MaxUploadBytes int64
	// MaxPixels bounds its width times height, checked on the header before
	// anything is decoded (default 16 megapixels).
	MaxPixels int
	// Concurrent bounds the predictions decoded at once, and so the memory
	// they take (default GOMAXPROCS); more wait their turn.
	Concurrent int
	// Timeouts of the http.Server (defaults in DefaultTimeouts).
	Timeouts Timeouts
	// EventEvery is the least time between two events of a stream (default
	// one second): a fast run changes the board far more often than a
	// person can read it.
	EventEvery time.Duration
	// ErrorLog receives the http.Server's own errors; nil discards them.
	ErrorLog *log.Logger
}

// Timeouts are the http.Server's, so that a slow or stalled client holds a
// connection for a bounded time.
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

// DefaultTimeouts fit a page on a local machine: a client has 5 s to send
// its headers and 30 s for an upload; an event stream lifts the read and
// write limits for itself and bounds each event's write instead.
func DefaultTimeouts() Timeouts {
	return Timeouts{ReadHeader: 5 * time.Second, Read: 30 * time.Second, Write: 30 * time.Second, Idle: 60 * time.Second}
}

// Server serves the drawing page, the dashboard and their API.
type Server struct {
	opt   Options
	model atomic.Pointer[Model]
	pages *template.Template
	slots chan struct{} // a token per prediction decoding at once
	mux   *http.ServeMux
}

// New returns a server with opt's content and limits.
func New(opt Options) (*Server, error) {
	if opt.MaxUploadBytes <= 0 {
		opt.MaxUploadBytes = 8 << 20
	}
	if opt.MaxPixels <= 0 {
		opt.MaxPixels = 16 << 20
	}
	if opt.Concurrent <= 0 {
		opt.Concurrent = runtime.GOMAXPROCS(0)
	}
	if opt.EventEvery <= 0 {
		opt.EventEvery = time.Second
	}
	def := DefaultTimeouts()
	t := &opt.Timeouts
	for _, p := range []struct{ v, d *time.Duration }{{&t.ReadHeader, &def.ReadHeader}, {&t.Read, &def.Read}, {&t.Write, &def.Write}, {&t.Idle, &def.Idle}} {
		if *p.v <= 0 {
			*p.v = *p.d
		}
	}
	pages, err := template.ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse pages: %w", err)
	}
	s := &Server{opt: opt, pages: pages, slots: make(chan struct{}, opt.Concurrent), mux: http.NewServeMux()}
	if opt.Model != nil {
		s.model.Store(opt.Model)
	}
	s.routes()
	return s, nil
}

// SetModel puts m behind the drawing page, as train does once its network
// is trained.
func (s *Server) SetModel(m *Model) { s.model.Store(m) }

// assetTypes are the files under assets/ served as they are, by name: the
// only paths a client can ask for.
func assetTypes() map[string]string {
	return map[string]string{
		"app.css":      "text/css; charset=utf-8",
		"draw.js":      "text/javascript; charset=utf-8",
		"dashboard.js": "text/javascript; charset=utf-8",
		"chart.js":     "text/javascript; charset=utf-8",
		"favicon.svg":  "image/svg+xml",
	}
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.HandleFunc("GET /draw", s.drawPage)
	s.mux.HandleFunc("GET /dashboard", s.dashboardPage)
	s.mux.HandleFunc("POST /api/predict", s.predict)
	s.mux.HandleFunc("GET /api/run", s.run)
	s.mux.HandleFunc("GET /api/events", s.events)
	for name, ctype := range assetTypes() {
		body, err := assets.ReadFile("assets/" + name)
		if err != nil {
			// The list and the embedded folder are both compiled in; a
			// name in one and not the other is a bug of this file.
			panic(fmt.Sprintf("web: asset %s: %v", name, err))
		}
		s.mux.HandleFunc("GET /"+name, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(body)
		})
	}
}

// Handler returns the server's handler: the routes behind the security
// headers and the cross-origin check.
func (s *Server) Handler() http.Handler {
	// A page on another site may not make the browser POST here (the
	// Sec-Fetch-Site and Origin headers tell); reading is harmless.
	return secure(http.NewCrossOriginProtection().Handler(s.mux))
}

// csp lets the pages load their scripts, styles and images from this server
// only, run no inline script, connect nowhere else, and be framed by nobody.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

// page is what the HTML templates are given.
type page struct {
	Model     string // the model's summary, or "" without one
	Dashboard bool   // whether there is a run to show
	Here      string // which page this is, for the navigation
}

func (s *Server) pageData(here string) page {
	p := page{Dashboard: s.opt.Board != nil, Here: here}
	if m := s.model.Load(); m != nil {
		p.Model = m.Summary
	}
	return p
}

// index is the drawing page when there is a model, else the dashboard.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	if s.model.Load() == nil && s.opt.Board != nil {
		s.render(w, "dashboard")
		return
	}
	s.drawPage(w, r)
}

func (s *Server) drawPage(w http.ResponseWriter, r *http.Request) {
	if s.model.Load() == nil && s.opt.Board == nil {
		fail(w, http.StatusNotFound, "no model to draw for: give serve -model FILE")
		return
	}
	// Without a model yet (train -serve before the end), the page says so
	// and links to the dashboard.
	s.render(w, "draw")
}

func (s *Server) dashboardPage(w http.ResponseWriter, r *http.Request) {
	if s.opt.Board == nil {
		fail(w, http.StatusNotFound, "no training run to show: run train -serve ADDR, or serve -metrics FILE")
		return
	}
	s.render(w, "dashboard")
}

func (s *Server) render(w http.ResponseWriter, name string) {
	// Into a buffer first, so that a template error is a 500, not half a
	// page.
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name+".html", s.pageData(name)); err != nil {
		if s.opt.ErrorLog != nil {
			s.opt.ErrorLog.Printf("render %s: %v", name, err)
		}
		fail(w, http.StatusInternalServerError, "the page could not be made")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(buf.Bytes())
}

// fail answers with a status and a one-line reason.
func fail(w http.ResponseWriter, code int, reason string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, reason, code)
}

// Running is a server listening on an address.
type Running struct {
	// URL is the address to open in a browser, with the port the system
	// chose when the address asked for port 0.
	URL    string
	srv    *http.Server
	cancel context.CancelFunc
	done   chan error
}

// Listen binds addr at once, so that a taken port is an error before any
// work starts, and serves on it in the background until Shutdown.
func (s *Server) Listen(addr string) (*Running, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	// Every request's context derives from base, so cancelling it ends the
	// event streams, which Shutdown would otherwise wait for.
	base, cancel := context.WithCancel(context.Background())
	t := s.opt.Timeouts
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          s.opt.ErrorLog,
	}
	if srv.ErrorLog == nil {
		srv.ErrorLog = log.New(io.Discard, "", 0)
	}
	r := &Running{URL: "http://" + ln.Addr().String() + "/", srv: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Serve(ln) }()
	return r, nil
}

// Shutdown stops accepting, ends the event streams and waits for the
// requests in flight, at most until ctx is done.
func (r *Running) Shutdown(ctx context.Context) error {
	r.cancel()
	err := r.srv.Shutdown(ctx)
	if serr := <-r.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("stop the web server: %w", err)
	}
	return nil
}
