package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

func runTune(e *env, args []string) error {
	fs := newFlags("tune")
	var dev deviceFlags
	dev.register(fs)
	hidden := intList(nn.DefaultConfig().Hidden)
	fs.Var(&hidden, "hidden", "widths of the ReLU hidden layers whose GEMMs to tune")
	batch := fs.Int("batch", nn.DefaultConfig().Batch, "batch size whose GEMMs to tune")
	if err := parse(e, fs, "[flags]", "Measures every candidate register block of the GEMM on each product of a\ntraining step (each checked against cpuref first), prints the choice per shape\nand stores it in the per-user cache, which train, verify and bench then use.\nTraining tunes missing shapes by itself; this redoes all of them.", args); err != nil {
		return err
	}
	if *batch <= 0 || *batch > nn.MaxSize {
		return &usageError{err: fmt.Errorf("-batch: must be between 1 and %d, got %d", nn.MaxSize, *batch)}
	}
	rt, err := dev.open(e)
	if err != nil {
		return err
	}
	defer rt.Close()
	if rt.Kernels.Kind() != kernels.GemmRegister {
		fmt.Fprintf(e.stdout, "%s uses the %s GEMM, which has nothing to tune\n", rt.Device.Name, rt.Kernels.Kind())
		return nil
	}
	cache, err := kernels.DefaultTuneCache()
	if err != nil {
		return err
	}
	shapes := nn.Shapes(nn.Sizes(28*28, hidden, mnist.NumClasses), *batch)
	key, err := rt.Kernels.TuneKey()
	if err != nil {
		return err
	}
	t, choices, err := rt.Kernels.Tune(shapes, func(format string, args ...any) {
		fmt.Fprintf(e.stderr, format+"\n", args...)
	})
	if err != nil {
		return err
	}
	if err := cache.Store(key, t); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "shape (M x K x N)\tblock (TM x 16*TNV, KC)\tus\tdefault block\tus\tspeed-up\t\n")
	for _, c := range choices {
		fmt.Fprintf(tw, "%v\t%s\t%.0f\t%s\t%.0f\t%.2fx\t\n", c.Shape, blockString(c.Block), c.Micros, blockString(c.Default), c.DefaultUs, c.DefaultUs/c.Micros)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "stored in %s for %s\n", cache.Path, key)
	return nil
}

func blockString(b kernels.Block) string {
	s := fmt.Sprintf("%d x %d", b.TM, 16*b.TNV)
	if b.Compensated {
		return s + ", compensated"
	}
	if b.KC == 0 {
		return s + ", KC 64"
	}
	return fmt.Sprintf("%s, KC %d", s, b.KC)
}
