package main

// Tests of serve's drawing page and train -serve's dashboard in a real
// browser: Debian's chromium, headless, driven by chromedp. A missing
// browser fails them (CI installs it); MNISTCL_CHROMIUM names another one.
// MNISTCL_SCREENSHOTS=DIR keeps a screenshot of each page there (the README's
// are made with MNISTCL_SCREENSHOTS=$PWD/docs); otherwise they go to a
// temporary folder, so the capture is tested all the same.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/mnist-cl/mnist-cl/mnist"
)

// browser is one headless chromium for one test, with the console errors of
// its pages.
type browser struct {
	ctx     context.Context
	mu      sync.Mutex
	errors  []string
	shotDir string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := os.Getenv("MNISTCL_CHROMIUM")
	if path == "" {
		var err error
		if path, err = exec.LookPath("chromium"); err != nil {
			t.Fatalf("no chromium to test the pages in (apt-get install chromium, or set MNISTCL_CHROMIUM): %v", err)
		}
	}
	profile := t.TempDir() // made before the browser, so removed after it
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 860),
	)
	ctx, cancelTab := chromedp.NewContext(alloc)
	ctx, cancelTime := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	b := &browser{ctx: ctx, shotDir: os.Getenv("MNISTCL_SCREENSHOTS")}
	if b.shotDir == "" {
		b.shotDir = t.TempDir()
	}
	// Console subscribes to the first tab, starting the browser.
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.errors = append(b.errors, m.URL+": "+m.String())
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs actions, failing the test with what was being done.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval returns a JavaScript expression's value.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// poll waits until expr is truthy in the page, failing after timeout.
func (b *browser) poll(t *testing.T, expr string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool]("!!("+expr+")", chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("waiting for %s: %v", expr, err)
	}
}

// checkConsole fails the test on any console error or uncaught exception
// so far: a CSP violation, a failed load and a script error all land there.
func (b *browser) checkConsole(t *testing.T) {
	t.Helper()
	// Messages arrive on another goroutine; give the last ones a moment.
	time.Sleep(100 * time.Millisecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errors {
		t.Errorf("console: %s", e)
	}
}

// screenshot saves the whole page as name.png for people to look at.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.shotDir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

// syncBuffer is a bytes.Buffer that a command writes while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// String returns what was written so far.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// background is a command running in process until stopped, as if a user
// pressed Ctrl-C.
type background struct {
	stop           context.CancelFunc
	code           chan int
	stdout, stderr *syncBuffer
}

func startCmd(t *testing.T, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &background{stop: cancel, code: make(chan int, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	e := &env{ctx: ctx, stdout: c.stdout, stderr: c.stderr, getenv: func(k string) string {
		if k == "MNISTCL_TUNE" {
			return "off"
		}
		return ""
	}}
	go func() { c.code <- run(e, args) }()
	t.Cleanup(func() { cancel(); <-c.code })
	return c
}

// waitFor returns the first match of re in what read returns, failing after
// timeout or when the command ends without it.
func (c *background) waitFor(t *testing.T, read func() string, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := re.FindString(read()); m != "" {
			return m
		}
		select {
		case code := <-c.code:
			c.code <- code
			if m := re.FindString(read()); m != "" {
				return m
			}
			t.Fatalf("the command ended (exit %d) before printing %s:\n%s\n%s", code, re, c.stdout, c.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no %s after %v:\n%s\n%s", re, timeout, c.stdout, c.stderr)
	return ""
}

// interrupt cancels the command's context and returns its exit code.
func (c *background) interrupt(t *testing.T) int {
	t.Helper()
	c.stop()
	select {
	case code := <-c.code:
		c.code <- code
		return code
	case <-time.After(20 * time.Second):
		t.Fatal("the command did not stop 20s after its interrupt")
		return -1
	}
}

var localURL = regexp.MustCompile(`http://127\.0\.0\.1:\d+/`)

// stroke is a pen stroke in pad units: (0, 0) the top left, (1, 1) the
// bottom right.
type stroke [][2]float64

// digitStrokes are digits as a person draws them on a pad: thick, off
// centre and larger than MNIST's 20x20 box in 28x28.
var digitStrokes = []struct {
	digit   int
	strokes []stroke
}{
	{1, []stroke{{{0.6, 0.1}, {0.52, 0.92}}}},
	{7, []stroke{{{0.12, 0.14}, {0.78, 0.14}, {0.42, 0.94}}}},
	{0, []stroke{ellipse(0.45, 0.52, 0.26, 0.38)}},
}

func ellipse(cx, cy, rx, ry float64) stroke {
	var s stroke
	for i := 0; i <= 48; i++ {
		a := 2 * math.Pi * float64(i) / 48
		s = append(s, [2]float64{cx + rx*math.Sin(a), cy - ry*math.Cos(a)})
	}
	return s
}

// draw sends the strokes to the pad as real mouse input: press, moves with
// the button held every few pixels, release. The page sees pointer events.
func (b *browser) draw(t *testing.T, strokes []stroke) {
	t.Helper()
	r := eval[[]float64](t, b, `(() => { const r = document.getElementById("pad").getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`)
	at := func(p [2]float64) (float64, float64) { return r[0] + p[0]*r[2], r[1] + p[1]*r[3] }
	held := func(p *input.DispatchMouseEventParams) { p.Button, p.Buttons = input.MouseButtonLeft, 1 }
	var acts []chromedp.Action[chromedp.Void]
	for _, s := range strokes {
		x, y := at(s[0])
		acts = append(acts, chromedp.MouseEvent(chromedp.MouseMoved, x, y),
			chromedp.MouseEvent(chromedp.MousePressed, x, y, held, chromedp.ClickCount(1)))
		for i := 1; i < len(s); i++ {
			x0, y0 := at(s[i-1])
			x1, y1 := at(s[i])
			n := max(1, int(math.Hypot(x1-x0, y1-y0)/6))
			for k := 1; k <= n; k++ {
				f := float64(k) / float64(n)
				acts = append(acts, chromedp.MouseEvent(chromedp.MouseMoved, x0+f*(x1-x0), y0+f*(y1-y0), held))
			}
		}
		x, y = at(s[len(s)-1])
		acts = append(acts, chromedp.MouseEvent(chromedp.MouseReleased, x, y, held, chromedp.ClickCount(1)))
	}
	b.do(t, "draw", acts...)
}

// pageAnswer waits for the answer to the latest drawing or upload and
// returns the digit the page shows.
func (b *browser) pageAnswer(t *testing.T) int {
	t.Helper()
	b.poll(t, `document.getElementById("pad").dataset.state === "idle"`, 15*time.Second)
	if msg := eval[string](t, b, `document.getElementById("status").className.includes("error") ? document.getElementById("status").textContent : ""`); msg != "" {
		t.Fatalf("the page answered with an error: %s", msg)
	}
	d := eval[string](t, b, `document.getElementById("digit").dataset.digit`)
	if len(d) != 1 || d[0] < '0' || d[0] > '9' {
		t.Fatalf("the page shows %q, not a digit", d)
	}
	return int(d[0] - '0')
}

// predictFile is what mnist-cl predict answers for an image file.
func predictFile(t *testing.T, model, file string) int {
	t.Helper()
	code, stdout, stderr := runCmd(t, "predict", "-model", model, "-json", file)
	if code != 0 {
		t.Fatalf("predict %s: exit %d: %s", file, code, stderr)
	}
	var preds []prediction
	if err := json.Unmarshal([]byte(stdout), &preds); err != nil || len(preds) != 1 {
		t.Fatalf("predict -json: %v: %s", err, stdout)
	}
	return preds[0].Digit
}

// trainSmall trains a network on the small test data and saves it.
func trainSmall(t *testing.T, args ...string) string {
	t.Helper()
	model := filepath.Join(t.TempDir(), "small.safetensors")
	all := append([]string{"train", "--data", smallData, "--save", model, "--quiet"}, args...)
	if code, stdout, stderr := runCmd(t, all...); code != 0 {
		t.Fatalf("train: exit %d\n%s\n%s", code, stdout, stderr)
	}
	return model
}

// TestBrowserDraw draws digits on serve's page with mouse input, reads the
// answer from the page, and holds it to predict's answer for the very same
// PNG; then uploads a photo-like PNG the same way.
func TestBrowserDraw(t *testing.T) {
	model := trainSmall(t, "--epochs", "12", "--hidden", "128", "--batch", "10")
	srv := startCmd(t, "serve", "-model", model, "-addr", "127.0.0.1:0")
	url := srv.waitFor(t, srv.stdout.String, localURL, 10*time.Second)
	b := newBrowser(t)
	b.do(t, "open the drawing page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#pad")))
	dir := t.TempDir()
	right := 0
	for _, d := range digitStrokes {
		b.do(t, "clear", chromedp.Click(chromedp.CSS("#clear")))
		b.draw(t, d.strokes)
		got := b.pageAnswer(t)
		// The pad's PNG is what the page sent; predict must read it alike.
		data := eval[string](t, b, `document.getElementById("pad").toDataURL("image/png")`)
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(data, "data:image/png;base64,"))
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "drawn-"+string(rune('0'+d.digit))+".png")
		if err := os.WriteFile(file, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		if want := predictFile(t, model, file); got != want {
			t.Errorf("drawn %d: the page says %d, predict says %d for the same PNG", d.digit, got, want)
		}
		if got == d.digit {
			right++
		}
		t.Logf("drawn %d: read as %d", d.digit, got)
	}
	// A network trained on 900 images is no judge of handwriting, but
	// strokes that reach it at all are read right more often than not.
	if right < 2 {
		t.Errorf("%d of %d drawn digits read right", right, len(digitStrokes))
	}
	b.screenshot(t, "serve")

	upload := filepath.Join(dir, "upload.png")
	label := writePhotoPNG(t, upload)
	b.do(t, "upload", chromedp.SetUploadFiles(chromedp.CSS("#upload"), []string{upload}))
	got := b.pageAnswer(t)
	if want := predictFile(t, model, upload); got != want {
		t.Errorf("upload of a %d: the page says %d, predict says %d", label, got, want)
	}
	t.Logf("uploaded %d: read as %d", label, got)
	b.checkConsole(t)
	if code := srv.interrupt(t); code != 0 {
		t.Errorf("serve exit %d after Ctrl-C, want 0:\n%s", code, srv.stderr)
	}
}

// writePhotoPNG writes the first test image as a user's picture would be:
// dark ink on grey paper, eight times larger, off centre; and returns its
// label.
func writePhotoPNG(t *testing.T, path string) int {
	t.Helper()
	split, err := mnist.Load(smallData)
	if err != nil {
		t.Fatal(err)
	}
	const scale = 8
	img := image.NewGray(image.Rect(0, 0, 300, 260))
	for i := range img.Pix {
		img.Pix[i] = 230
	}
	for y := range 28 * scale {
		for x := range 28 * scale {
			ink := split.Test.Images[(y/scale)*28+x/scale]
			img.SetGray(60+x, 10+y, color.Gray{Y: 230 - uint8(int(ink)*200/255)})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return int(split.Test.Labels[0])
}

// TestBrowserDashboard watches train -serve's dashboard: the loss curve
// gains points while a run trains; a finished run shows its test accuracy
// and confusion matrix and stays up until Ctrl-C; serve -metrics shows the
// same page from the run's metrics file.
func TestBrowserDashboard(t *testing.T) {
	b := newBrowser(t)
	const points = `+(document.getElementById("loss-chart").dataset.points || 0)`

	// A run far longer than the test, stopped once the curve has grown: a
	// fast machine cannot finish it before the page has looked.
	live := startCmd(t, "train", "--data", smallData, "--epochs", "100000", "--hidden", "64", "--batch", "10", "--quiet", "-serve", "127.0.0.1:0")
	url := live.waitFor(t, live.stderr.String, localURL, 10*time.Second)
	b.do(t, "open the dashboard", chromedp.Navigate(url+"dashboard"), chromedp.WaitVisible(chromedp.CSS("#loss-chart")))
	seen := []int{}
	for len(seen) < 3 {
		b.poll(t, points+` > `+itoa(append([]int{0}, seen...)[len(seen)]), 20*time.Second)
		seen = append(seen, eval[int](t, b, points))
	}
	if s := eval[string](t, b, `document.getElementById("status").textContent`); s != "training" {
		t.Errorf("status %q during the run, want training", s)
	}
	t.Logf("loss chart points: %v", seen)
	// An interrupted run exits 130, as without -serve, and says so.
	if code := live.interrupt(t); code != 130 || !strings.Contains(live.stderr.String(), "interrupted") {
		t.Errorf("train exit %d after Ctrl-C, want 130 and the interrupt said:\n%s", code, live.stderr)
	}

	metrics := filepath.Join(t.TempDir(), "run.jsonl")
	model := filepath.Join(t.TempDir(), "run.safetensors")
	done := startCmd(t, "train", "--data", smallData, "--epochs", "15", "--hidden", "128", "--batch", "10", "--quiet",
		"--metrics", metrics, "--save", model, "-serve", "127.0.0.1:0")
	done.waitFor(t, done.stderr.String, regexp.MustCompile(`the dashboard stays at `+localURL.String()), 60*time.Second)
	url = localURL.FindString(done.stderr.String())
	b.do(t, "open the finished dashboard", chromedp.Navigate(url+"dashboard"))
	b.poll(t, `document.getElementById("status").textContent === "finished"`, 10*time.Second)
	if n := eval[int](t, b, `document.querySelectorAll("#confusion td").length`); n != 100 {
		t.Errorf("the confusion matrix has %d cells, want 100", n)
	}
	if acc := eval[string](t, b, `document.getElementById("test-acc").textContent`); !strings.HasSuffix(acc, "%") {
		t.Errorf("test accuracy shows %q", acc)
	}
	b.screenshot(t, "dashboard")
	// The run's network is behind the drawing page now.
	b.do(t, "open the drawing page", chromedp.Navigate(url+"draw"), chromedp.WaitVisible(chromedp.CSS("#pad")))
	if n := eval[int](t, b, `document.querySelectorAll("#no-model").length`); n != 0 {
		t.Error("the drawing page has no model after the run")
	}
	if code := done.interrupt(t); code != 0 {
		t.Errorf("train exit %d after Ctrl-C at the end, want 0:\n%s", code, done.stderr)
	}

	file := startCmd(t, "serve", "-metrics", metrics, "-model", model, "-addr", "127.0.0.1:0")
	url = file.waitFor(t, file.stdout.String, localURL, 10*time.Second)
	b.do(t, "open the dashboard of the file", chromedp.Navigate(url+"dashboard"))
	b.poll(t, `document.getElementById("status").textContent === "finished"`, 10*time.Second)
	if n := eval[int](t, b, points); n < 15 {
		t.Errorf("the loss chart of the file has %d points, want 15 epochs' or more", n)
	}
	b.checkConsole(t)
	if code := file.interrupt(t); code != 0 {
		t.Errorf("serve exit %d after Ctrl-C, want 0", code)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
