package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mnist-cl/mnist-cl/nn"
)

func runTrain(e *env, args []string) error {
	fs := newFlags("train")
	var dev deviceFlags
	dev.register(fs)
	var net netFlags
	net.register(fs, "images per SGD step", "seed of the initial weights and of every epoch's shuffle", "SGD learning rate")
	fs.IntVar(&net.cfg.Epochs, "epochs", net.cfg.Epochs, "passes over the training set")
	metrics := fs.String("metrics", "", "write one JSON object per epoch, then one with test_accuracy, to this file")
	if err := parse(e, fs, "[flags]", "Trains the 784-...-10 ReLU network with mini-batch SGD on the OpenCL device,\nprinting a line per epoch and the final test accuracy.", args); err != nil {
		return err
	}
	cfg, err := net.config()
	if err != nil {
		return err
	}

	// Open the metrics file before hours of training, not after.
	var mw *metricsWriter
	if *metrics != "" {
		if mw, err = newMetricsWriter(*metrics); err != nil {
			return err
		}
		defer mw.abort()
	}

	rt, split, err := dev.openWithData(e, net.data)
	if err != nil {
		return err
	}
	defer rt.Close()
	t, err := nn.NewTrainer(rt, split, cfg)
	if err != nil {
		return err
	}
	defer t.Release()
	fmt.Fprintf(e.stderr, "network %s, batch %d, lr %g, seed %d; %d train / %d validation / %d test images; first step %.2fs\n",
		sizesString(t.Net.Sizes()), cfg.Batch, cfg.LR, cfg.Seed, split.Train.Len(), split.Validation.Len(), split.Test.Len(), t.WarmUp.Seconds())

	for i := 0; i < cfg.Epochs; i++ {
		ep, err := t.Epoch(e.ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "epoch %2d  loss %.4f  train %6.2f%%  val %6.2f%%  %6.2fs  %7.0f img/s\n",
			ep.Epoch, ep.TrainLoss, 100*ep.TrainAccuracy, 100*ep.ValAccuracy, ep.Seconds, ep.ImagesPerSec)
		if err := mw.write(ep); err != nil {
			return err
		}
	}
	loss, acc, err := t.Test()
	if err != nil {
		return fmt.Errorf("test set: %w", err)
	}
	fmt.Fprintf(e.stdout, "test accuracy %.2f%%  loss %.4f\n", 100*acc, loss)
	if err := mw.write(map[string]float64{"test_accuracy": acc, "test_loss": loss}); err != nil {
		return err
	}
	return mw.commit()
}

func sizesString(s []int) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += "-"
		}
		out += fmt.Sprint(v)
	}
	return out
}

// metricsWriter writes JSON lines to a temporary file beside the target and
// renames it into place only when training finished, so a failed or
// interrupted run never leaves a partial metrics file.
type metricsWriter struct {
	path string
	f    *os.File
	enc  *json.Encoder
}

func newMetricsWriter(path string) (*metricsWriter, error) {
	// The rename at the end would fail on a folder: say so now.
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("metrics file %s: exists and is not a regular file", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("metrics file %s: %w", path, err)
	}
	// CreateTemp makes 0600; a metrics file is for other tools to read.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("metrics file %s: %w", path, err)
	}
	return &metricsWriter{path: path, f: f, enc: json.NewEncoder(f)}, nil
}

func (m *metricsWriter) write(v any) error {
	if m == nil {
		return nil
	}
	if err := m.enc.Encode(v); err != nil {
		return fmt.Errorf("write metrics %s: %w", m.path, err)
	}
	return nil
}

func (m *metricsWriter) commit() error {
	if m == nil {
		return nil
	}
	tmp := m.f.Name()
	err := m.f.Sync()
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	m.f = nil
	if err == nil {
		err = os.Rename(tmp, m.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write metrics %s: %w", m.path, err)
	}
	return nil
}

// abort removes the temporary file unless commit already renamed it.
func (m *metricsWriter) abort() {
	if m.f != nil {
		m.f.Close()
		os.Remove(m.f.Name())
	}
}
