package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeFlags covers serve's and train -serve's usage errors and
// failures, which need no browser.
func TestServeFlags(t *testing.T) {
	if code, stdout, _ := runCmd(t, "serve", "-h"); code != 0 || !strings.Contains(stdout, "usage: mnist-cl serve") || !strings.Contains(stdout, "127.0.0.1:8080") {
		t.Errorf("serve -h: exit %d, stdout %q", code, stdout)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	notJSON := filepath.Join(t.TempDir(), "m.jsonl")
	if err := os.WriteFile(notJSON, []byte("epoch 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve"}, 2, "-model FILE is required"},
		{[]string{"serve", "-model", "x", "extra"}, 2, "extra"},
		{[]string{"train", "-serve-exit"}, 2, "-serve-exit needs -serve"},
		{[]string{"serve", "-model", filepath.Join(t.TempDir(), "none.safetensors")}, 1, "none.safetensors"},
		{[]string{"serve", "-metrics", notJSON}, 1, "m.jsonl line 1"},
		{[]string{"serve", "-metrics", filepath.Join(t.TempDir(), "none.jsonl")}, 1, "none.jsonl"},
		// A taken port fails before any kernel is built or data read.
		{[]string{"train", "--data", "/nonexistent", "-serve", taken.Addr().String()}, 1, "listen on " + taken.Addr().String()},
	} {
		code, _, stderr := runCmd(t, c.args...)
		if line := errorLine(stderr); code != c.code || !strings.Contains(line, c.want) {
			t.Errorf("%v: exit %d, error line %q; want exit %d naming %q", c.args, code, line, c.code, c.want)
		}
	}
}

// TestWarnIfOpen warns for every address but a loopback one.
func TestWarnIfOpen(t *testing.T) {
	for addr, open := range map[string]bool{"127.0.0.1:80": false, "localhost:0": false, "[::1]:8080": false, ":8080": true, "0.0.0.0:80": true, "192.168.1.2:80": true} {
		var b strings.Builder
		warnIfOpen(&b, addr)
		if got := b.Len() > 0; got != open {
			t.Errorf("%s: warned %v, want %v", addr, got, open)
		}
	}
}
