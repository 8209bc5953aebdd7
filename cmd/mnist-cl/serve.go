package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"time"

	"github.com/mnist-cl/mnist-cl/internal/atomicfile"
	"github.com/mnist-cl/mnist-cl/internal/web"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

// defaultAddr is where serve listens: this machine only, unless told.
const defaultAddr = "127.0.0.1:8080"

// shutdownGrace bounds how long a stopping server waits for requests in
// flight; a prediction takes milliseconds.
const shutdownGrace = 5 * time.Second

const serveHelp = `Serves a page to draw a digit on and see the network's answer, its ten
probabilities and the 28x28 image it saw, prepared as predict prepares a
file. With -metrics, also the dashboard of that training run. The page loads
nothing from the internet. Ctrl-C stops the server.`

func runServe(e *env, args []string) error {
	fs := newFlags("serve")
	model := fs.String("model", "", "the checkpoint to answer drawings with (a safetensors file written by train -save)")
	metrics := fs.String("metrics", "", "also show the dashboard of the run that wrote this train -metrics file")
	addr := fs.String("addr", defaultAddr, "address to listen on (host:port; port 0 picks a free one); another host than 127.0.0.1 or localhost lets other machines in")
	if err := parse(e, fs, "-model FILE [-metrics FILE] [-addr HOST:PORT]", serveHelp, args); err != nil {
		return err
	}
	if *model == "" && *metrics == "" {
		return &usageError{err: errors.New("-model FILE is required (or -metrics FILE for the dashboard alone)")}
	}
	opt := web.Options{ErrorLog: log.New(e.stderr, "mnist-cl serve: ", 0)}
	var ck *nn.Checkpoint
	if *model != "" {
		var err error
		if ck, err = nn.ReadCheckpoint(*model); err != nil {
			return err
		}
		if opt.Model, err = web.NewModel(ck); err != nil {
			return fmt.Errorf("%s: %w", *model, err)
		}
	}
	if *metrics != "" {
		b, err := readMetrics(*metrics)
		if err != nil {
			return err
		}
		if ck != nil {
			b.Describe("", nn.FormatSizes(ck.Sizes), b.State().Epochs, web.Settings(ck.Config))
		}
		opt.Board = b
	}
	srv, err := web.New(opt)
	if err != nil {
		return err
	}
	running, err := srv.Listen(*addr)
	if err != nil {
		return err
	}
	warnIfOpen(e.stderr, *addr)
	fmt.Fprintf(e.stdout, "serving %s (Ctrl-C to stop)\n", running.URL)
	<-e.ctx.Done()
	return shutdown(running)
}

func readMetrics(path string) (*web.Board, error) {
	f, _, err := atomicfile.OpenRegular(path)
	if err != nil {
		return nil, fmt.Errorf("read metrics %s: %w", path, err)
	}
	defer f.Close()
	return web.ReadMetrics(f, path)
}

// warnIfOpen says so when addr lets other machines reach the server: the
// pages have no login.
func warnIfOpen(w io.Writer, addr string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return
	}
	fmt.Fprintf(w, "mnist-cl: warning: listening on %s lets other machines use the pages, which have no login\n", addr)
}

func shutdown(r *web.Running) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	return r.Shutdown(ctx)
}

// dashboard is train -serve: the live page of a run. Its methods do nothing
// on a nil dashboard, so train calls them whether or not it serves.
type dashboard struct {
	board   *web.Board
	srv     *web.Server
	running *web.Running
	stderr  io.Writer
	// test is the host copy of the test set, kept (7.8 MB for MNIST) to
	// count the confusion matrix at the end.
	test *mnist.Set
}

// startDashboard listens on tf.serve before the device is opened, so the
// page can be opened while kernels build and data loads.
func (tf *trainFlags) startDashboard(e *env) (*dashboard, error) {
	if tf.serve == "" {
		return nil, nil
	}
	board := web.NewBoard("live run")
	srv, err := web.New(web.Options{Board: board, ErrorLog: log.New(e.stderr, "mnist-cl train: serve: ", 0)})
	if err != nil {
		return nil, err
	}
	running, err := srv.Listen(tf.serve)
	if err != nil {
		return nil, fmt.Errorf("-serve: %w", err)
	}
	warnIfOpen(e.stderr, tf.serve)
	fmt.Fprintf(e.stderr, "dashboard at %s\n", running.URL)
	return &dashboard{board: board, srv: srv, running: running, stderr: e.stderr}, nil
}

// describe shows the device, the network and the settings.
func (d *dashboard) describe(rt *nn.Runtime, t *nn.Trainer, split *mnist.Split) {
	if d == nil {
		return
	}
	d.test = split.Test
	dev := rt.Device
	cfg := t.Config()
	settings := append(web.Settings(cfg),
		web.Setting{Name: "images", Value: fmt.Sprintf("%d train / %d validation / %d test", split.Train.Len(), split.Validation.Len(), split.Test.Len())},
		web.Setting{Name: "GEMM", Value: rt.Kernels.Kind().String()})
	d.board.Describe(fmt.Sprintf("%s (%s, %s)", dev.Name, dev.Type, dev.Platform), nn.FormatSizes(t.Net.Sizes()), cfg.Epochs, settings)
}

// watch has the trainer's progress reports drawn, beside the progress bar
// that may already take them.
func (d *dashboard) watch(t *nn.Trainer) {
	if d == nil {
		return
	}
	bar := t.Progress
	t.Progress = func(p nn.Progress) {
		if bar != nil {
			bar(p)
		}
		d.board.Progress(p)
	}
}

func (d *dashboard) epoch(ep nn.Epoch) {
	if d != nil {
		d.board.Epoch(ep)
	}
}

func (d *dashboard) testing() {
	if d != nil {
		d.board.Testing()
	}
}

// finish shows the test result with its confusion matrix, and puts the
// trained network behind the drawing page.
func (d *dashboard) finish(t *nn.Trainer, accuracy, loss float64) error {
	if d == nil {
		return nil
	}
	out, err := t.Net.Classify(d.test)
	if err != nil {
		return fmt.Errorf("confusion matrix: %w", err)
	}
	confusion := make([][]int, out.Classes)
	for i := range confusion {
		confusion[i] = make([]int, out.Classes)
	}
	for i, y := range d.test.Labels {
		confusion[y][out.Pred(i)]++
	}
	d.board.Finish(accuracy, loss, confusion)
	ck, err := t.Checkpoint()
	if err != nil {
		return err
	}
	if m, err := web.NewModel(ck); err == nil {
		d.srv.SetModel(m)
	}
	return nil
}

// linger keeps the page up after a finished run until Ctrl-C, unless exit.
func (d *dashboard) linger(e *env, exit bool) error {
	if d == nil {
		return nil
	}
	if !exit && e.ctx.Err() == nil {
		fmt.Fprintf(e.stderr, "training finished; the dashboard stays at %s until Ctrl-C\n", d.running.URL)
		<-e.ctx.Done()
	}
	return d.close()
}

// fail records why the run ended early, for a page still open.
func (d *dashboard) fail(err error) {
	if d != nil && err != nil {
		d.board.Stop(err.Error())
	}
}

// close stops the server; a second call does nothing.
func (d *dashboard) close() error {
	if d == nil || d.running == nil {
		return nil
	}
	r := d.running
	d.running = nil
	return shutdown(r)
}
