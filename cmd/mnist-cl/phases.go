package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/mnist-cl/mnist-cl/nn"
)

// signalled is ctx's error once it is done, without asking Err before: a
// phase's own checks then leave the Err calls to the steps of training,
// which is what cltest.StepsContext counts in the tests.
func signalled(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	default:
		return nil
	}
}

// interruptedIn is how a phase of a command ends once a signal has come:
// errInterrupted (exit 130) naming the phase, whether the phase failed of
// the cancelled context (a fetch, a tuning) or ran to its end without
// looking at it (a kernel build, reading a data folder). Without a signal,
// err passes through as it is.
func interruptedIn(e *env, phase string, err error) error {
	ctxErr := signalled(e.ctx)
	switch {
	case ctxErr == nil || errors.Is(err, errInterrupted):
		return err
	case err == nil:
		return fmt.Errorf("%w while %s: %v", errInterrupted, phase, ctxErr)
	default:
		return fmt.Errorf("%w while %s: %v", errInterrupted, phase, err)
	}
}

// prepareRun is the last phase before training: the self-check of the
// device, then the run record, which names its result, written as the
// metrics file's first line and kept for the checkpoints.
func (tf *trainFlags) prepareRun(e *env, rt *nn.Runtime, kernelDir string, sizes []int, rows int, cfg nn.Config, args []string, mw *metricsWriter) error {
	// Tuning is skipped or cached in most runs and does not look at the
	// signal then: a Ctrl-C since the data was loaded ends the run here.
	if err := interruptedIn(e, "tuning the GEMM", nil); err != nil {
		return err
	}
	result, err := selfCheck(e, rt, sizes, rows, cfg)
	if err != nil {
		return err
	}
	if tf.record, err = newRunRecord(rt, kernelDir, sizes, rows, cfg, result, args); err != nil {
		return err
	}
	return mw.write(map[string]*runRecord{"run_record": tf.record})
}

// stopAfter ends finish's writing once a signal has come, after the file
// in hand is whole: the outputs written so far are complete, the rest are
// not started, and the metrics file is not committed.
func stopAfter(e *env, written string, w io.Writer) error {
	if signalled(e.ctx) == nil {
		return nil
	}
	fmt.Fprintf(w, "stopped after writing %s; later outputs not written\n", written)
	return fmt.Errorf("%w after writing %s: %v", errInterrupted, written, e.ctx.Err())
}
