package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/mnist"
	"github.com/mnist-cl/mnist-cl/nn"
)

const planHelp = `Prints one training step of the network as nn.Plan declares it: its tensors
(shape, role, bytes) and its launches in the order they run, each with its
GEMM shape and form, its epilogue, the tensors it reads and writes, the bytes
it moves (every operand once: a lower bound) and its FLOPs, and the totals.
Nothing runs on a device; bench times the same GEMMs.

The register GEMM (CPUs) packs the B^T of each A B^T into local memory inside
the product (into the GEMM scratch by a transpose launch first, where it does
not fit); the tiled GEMM (GPUs) follows a product with its epilogue's
own kernels (bias_add, bias_relu, relu_mask, col_sum, update).`

func runPlan(e *env, args []string) error {
	fs := newFlags("plan")
	var net netFlags
	net.register(fs, nn.DefaultConfig(), "images per step", "unused: the plan does not depend on it")
	cfg, err := parseConfig(e, fs, planHelp, args, &net)
	if err != nil {
		return err
	}
	sizes := nn.Sizes(28*28, cfg.Hidden, mnist.NumClasses)
	p, err := nn.NewPlan(sizes, cfg.Batch, cfg.Loss)
	if err != nil {
		return &usageError{err: err}
	}
	fmt.Fprintf(e.stdout, "network %s, batch %d, loss %s, optimizer %s\n\n", nn.FormatSizes(sizes), cfg.Batch, cfg.Loss, cfg.Optimizer())
	if err := printTensors(e.stdout, p, cfg.Momentum != 0); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout)
	return printLaunches(e.stdout, p)
}

// printTensors lists the plan's buffers; velocities only with momentum.
func printTensors(w io.Writer, p *nn.Plan, momentum bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	// Every cell ends in a tab: right-aligned columns need the last one closed.
	fmt.Fprintln(tw, "tensor\trows\tcols\trole\tbytes\t")
	var total uint64
	for _, t := range p.Tensors {
		if t.Role == nn.Velocity && !momentum {
			continue
		}
		rows := fmt.Sprint(t.Rows)
		if t.Batched {
			rows = "batch " + rows
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t\n", t.Name, rows, t.Cols, t.Role, thousands(float64(t.Bytes())))
		total += t.Bytes()
	}
	fmt.Fprintf(tw, "total\t\t\t\t%s\t\n", thousands(float64(total)))
	return tw.Flush()
}

// printLaunches lists the step's launches in order with their costs.
func printLaunches(w io.Writer, p *nn.Plan) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tkernel\tcomputes\tform\tm x k x n\tepilogue\tbytes\tFLOPs")
	var bytes, flops uint64
	for i, l := range p.Launches {
		form, dims, epi := "", "", ""
		if l.Kernel == nn.KernelGemm {
			m, n, k := l.Dims(p.Batch)
			form, dims, epi = l.Form.String(), fmt.Sprintf("%d x %d x %d", m, k, n), l.Epi.String()
			if l.Epi == kernels.EpiNone {
				epi = ""
			}
			if l.Sparse {
				form += ", sparse A"
			}
		}
		b, f := p.Bytes(l, p.Batch), p.FLOPs(l, p.Batch)
		bytes, flops = bytes+b, flops+f
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, l.Kernel, l.Product, form, dims, epi, thousands(float64(b)), thousands(float64(f)))
	}
	fmt.Fprintf(tw, "\t%d launches\t\t\t\t\t%s\t%s\n", len(p.Launches), thousands(float64(bytes)), thousands(float64(flops)))
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "\nsparse A: A is the input batch, mostly zero pixels; the register GEMM first lists each block's\n"+
		"nonzero terms (one launch more) and runs only those, in products of 2^22 multiply-adds or more\n"+
		"and more than 16 columns. FLOPs count every term.")
	return err
}
