// Package web serves mnist-cl's two pages from the binary: a page to draw a
// digit on and see what a trained network makes of it (mnist-cl serve), and
// a dashboard of a training run, live (train -serve) or from a metrics file
// (serve -metrics).
//
// # Routes
//
// Only these paths exist; anything else is a 404 and a wrong method a 405.
// No path from a client ever reaches the file system: the assets are
// embedded (go:embed) and served by their fixed names.
//
//	GET  /               the drawing page, or the dashboard when there is no model
//	GET  /draw           the drawing page
//	GET  /dashboard      the dashboard
//	POST /api/predict    body: a PNG, JPEG or GIF; answer: JSON digit, probabilities, pixels
//	GET  /api/run        the dashboard's state as JSON
//	GET  /api/events     the same state as Server-Sent Events, again after every change
//	GET  /app.css, /draw.js, /dashboard.js, /chart.js, /favicon.svg
//
// # Inference on the host
//
// Predictions run on the host, in float32, from the checkpoint's weights
// (Model.Forward), not on the OpenCL device. One image is about half a
// million multiply-adds for the default 784-512-256-10 network, well under
// a millisecond on one core, less than one kernel launch and read-back
// costs on PoCL; and a device network holds one set of activation buffers,
// so concurrent requests would have to queue on a lock, while the host
// pass shares only read-only weights and needs none. It also lets serve
// start without building kernels and run where no OpenCL device is. The
// numbers are the device's to float32 rounding (the sums run in another
// order); the tests hold them to cpuref's float64 forward pass.
//
// The image goes through internal/digit exactly as mnist-cl predict reads a
// file, so a drawing saved as PNG gets the same answer from both.
//
// # Limits
//
// Everything a client sends is bounded before it costs memory: an upload's
// bytes (MaxBytesReader, 8 MiB by default), its pixels (from the header,
// before decoding, 16 megapixels by default; internal/digit checks its own
// limits too), the decodes running at once (GOMAXPROCS by default), the
// header size, and the time to send headers, a body and to read an answer
// (http.Server timeouts). An event stream lifts the server's read and write
// deadlines for itself and bounds each event's write instead.
//
// A bad request is answered with a 4xx status and a one-line reason:
// 413 for too many bytes or pixels, 415 for what is not an image, 422 for
// an image with no digit in it, 408 for an upload that stalled. Every
// answer carries a Content-Security-Policy that allows scripts, styles and
// connections from the page's own origin only (no inline script), with
// nosniff and frame-ancestors 'none'; cross-origin POSTs are refused
// (http.CrossOriginProtection).
//
// # Dashboard updates
//
// A Board is written by the training loop and read by every stream. Each
// event carries the run's whole state (a few KiB even for a long run), so a
// page that opens late or reconnects draws everything from one event; a
// stream sends at most one event per Options.EventEvery (a second by
// default). The training loss is kept per reporting interval of the
// trainer (nn.Progress, every 64 steps and at each epoch's end), derived
// from the running epoch means it reports.
//
// Running.Shutdown cancels the event streams first, then calls
// http.Server.Shutdown, which would otherwise wait for streams that never
// end.
package web
