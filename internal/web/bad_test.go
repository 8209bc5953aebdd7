package web

import (
	"bufio"
	"bytes"
	"image"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mnist-cl/mnist-cl/internal/testutil"
)

// TestBadRequests sends what a broken or hostile client might, and checks
// that each gets its 4xx with a one-line reason and that the server still
// answers a good request after all of them.
func TestBadRequests(t *testing.T) {
	const limit = 64 << 10
	url := start(t, Options{Model: newModel(t, 784, 16, 10), MaxUploadBytes: limit, MaxPixels: 1 << 20})
	big := testutil.EncodePNG(t, image.NewGray(image.Rect(0, 0, 2000, 2000))) // small file, 4 megapixels
	blank := testutil.EncodePNG(t, image.NewGray(image.Rect(0, 0, 50, 50)))
	good := digitPNG(t, 100, 100)
	cases := []struct {
		name, method, path string
		body               io.Reader
		header             map[string]string
		code               int
		reason             string
	}{
		{"unknown route", "GET", "/etc/passwd", nil, nil, 404, "not found"},
		{"wrong method", "GET", "/api/predict", nil, nil, 405, ""},
		{"wrong method on a page", "POST", "/draw", strings.NewReader("x"), nil, 405, ""},
		{"not an image", "POST", "/api/predict", strings.NewReader("hello"), nil, 415, "not a PNG, JPEG or GIF"},
		{"empty", "POST", "/api/predict", strings.NewReader(""), nil, 415, "empty"},
		{"too many bytes", "POST", "/api/predict", bytes.NewReader(make([]byte, limit+1)), nil, 413, "limit"},
		// No Content-Length: the limit holds while reading.
		{"too many bytes, chunked", "POST", "/api/predict", io.MultiReader(bytes.NewReader(make([]byte, limit+1))), nil, 413, "limit"},
		{"too many pixels", "POST", "/api/predict", bytes.NewReader(big), nil, 413, "megapixels"},
		{"no digit", "POST", "/api/predict", bytes.NewReader(blank), nil, 422, "blank"},
		{"truncated", "POST", "/api/predict", bytes.NewReader(good[:len(good)/2]), nil, 400, "truncated"},
		{"from another site", "POST", "/api/predict", bytes.NewReader(good), map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, ""},
		{"no dashboard", "GET", "/dashboard", nil, nil, 404, "no training run"},
		{"no event stream", "GET", "/api/events", nil, nil, 404, "no training run"},
		{"asset above its folder", "GET", "/draw.js/../../go.mod", nil, nil, 404, ""},
	}
	for _, c := range cases {
		req, err := http.NewRequest(c.method, url+c.path, c.body)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != c.code {
			t.Errorf("%s: status %d, want %d (%q)", c.name, res.StatusCode, c.code, body)
			continue
		}
		if text := string(body); strings.Count(text, "\n") != 1 || !strings.HasSuffix(text, "\n") || !strings.Contains(text, c.reason) {
			t.Errorf("%s: body %q, want one line with %q", c.name, text, c.reason)
		}
	}
	if res, err := http.Post(url+"/api/predict", "image/png", bytes.NewReader(good)); err != nil || res.StatusCode != 200 {
		t.Fatalf("a good request after the bad ones: %v %v", res, err)
	}
}

// TestSlowClients holds connections open without finishing a request: the
// server closes them when its timeouts pass, and serves others meanwhile.
func TestSlowClients(t *testing.T) {
	timeouts := Timeouts{ReadHeader: 200 * time.Millisecond, Read: 400 * time.Millisecond, Write: time.Second, Idle: time.Second}
	url := start(t, Options{Model: newModel(t, 784, 10), Timeouts: timeouts})
	addr := strings.TrimPrefix(url, "http://")
	for _, c := range []struct{ name, sent, want string }{
		// Never ends its headers: the connection is closed, no answer.
		{"slow headers", "POST /api/predict HTTP/1.1\r\nHost: x\r\n", ""},
		// Promises a body it never sends: the read fails, 408.
		{"slow body", "POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n\x89PNG", "HTTP/1.1 408"},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := io.WriteString(conn, c.sent); err != nil {
			t.Fatal(err)
		}
		// Meanwhile another client is served at once.
		if res, err := http.Get(url + "/draw"); err != nil || res.StatusCode != 200 {
			t.Fatalf("%s: another client: %v %v", c.name, res, err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		took := time.Since(start)
		conn.Close()
		if c.want == "" && (line != "" || err == nil) || c.want != "" && !strings.HasPrefix(line, c.want) {
			t.Errorf("%s: read %q, %v; want %q", c.name, line, err, c.want)
		}
		if took > 2*time.Second {
			t.Errorf("%s: the server held the connection %v", c.name, took)
		}
	}
}
