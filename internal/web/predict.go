package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mnist-cl/mnist-cl/internal/digit"
)

// answer is what POST /api/predict returns.
type answer struct {
	Digit         int       `json:"digit"`
	Probabilities []float32 `json:"probabilities"`
	// Pixels is the 28x28 image the network saw, row by row, 0 for the
	// background and 255 for ink (numbers: a []uint8 would be base64).
	Pixels []int   `json:"pixels"`
	Millis float64 `json:"millis"` // preparation and forward pass
}

// predict answers an image sent as the request body (a PNG, JPEG or GIF,
// as predict reads from a file) with the network's answer.
func (s *Server) predict(w http.ResponseWriter, r *http.Request) {
	m := s.model.Load()
	if m == nil {
		w.Header().Set("Retry-After", "10")
		fail(w, http.StatusServiceUnavailable, "no model yet: the drawing page answers once training has finished")
		return
	}
	limit := s.opt.MaxUploadBytes
	if r.ContentLength > limit {
		fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the image is %d bytes, over the %d-byte limit", r.ContentLength, limit))
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the image is over the %d-byte limit", limit))
		return
	case err != nil:
		// A client that stalls past the read timeout lands here; the
		// connection is closed after this answer either way.
		fail(w, http.StatusRequestTimeout, "the image could not be read: "+oneLine(err))
		return
	}
	// Decoding takes memory in proportion to the pixels: only so many at
	// once, the rest wait (or give up with their client).
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-r.Context().Done():
		return
	}
	start := time.Now()
	px, code, err := s.prepare(data)
	if err != nil {
		fail(w, code, oneLine(err))
		return
	}
	probs := m.Forward(px)
	a := answer{Probabilities: probs, Pixels: make([]int, len(px))}
	for c, p := range probs {
		// The first of equal maxima, as the kernels and predict choose.
		if p > probs[a.Digit] {
			a.Digit = c
		}
	}
	for i, p := range px {
		a.Pixels[i] = int(p)
	}
	a.Millis = float64(time.Since(start).Microseconds()) / 1000
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	// An error here is a client gone away; there is no one left to tell.
	_ = json.NewEncoder(w).Encode(&a)
}

// prepare checks the image's size from its header, then turns it into the
// 28x28 digit as predict does; on failure it returns the status to answer.
func (s *Server) prepare(data []byte) ([]uint8, int, error) {
	// digit's own bound (50 megapixels) suits a command reading one file;
	// a server decoding several at once keeps a tighter one. A header
	// that does not parse is left to digit.Decode, which says why.
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil && cfg.Width*cfg.Height > s.opt.MaxPixels {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("the image is %dx%d pixels, over the limit of %d megapixels",
			cfg.Width, cfg.Height, s.opt.MaxPixels>>20)
	}
	px, err := digit.Decode(bytes.NewReader(data))
	switch {
	case err == nil:
		return px, http.StatusOK, nil
	case errors.Is(err, digit.ErrTooLarge):
		return nil, http.StatusRequestEntityTooLarge, err
	case errors.Is(err, digit.ErrFormat):
		return nil, http.StatusUnsupportedMediaType, err
	case errors.Is(err, digit.ErrBlank):
		return nil, http.StatusUnprocessableEntity, err
	}
	return nil, http.StatusBadRequest, err
}

// oneLine keeps a reason on the one line that a client shows.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
