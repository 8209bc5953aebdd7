package main

import (
	"encoding/json"
	"fmt"
	"runtime/debug"

	"github.com/mnist-cl/mnist-cl/kernels"
	"github.com/mnist-cl/mnist-cl/nn"
)

// runRecord says what produced a run, so that a result someone reports can
// be traced to it: the program's version, the device and driver, the kernel
// sources and how they were built, the GEMM blocks, the self-check, the
// command line and the settings it came to. It is the first line of every
// --metrics file (as {"run_record": ...}) and the "run_record" metadata of
// every checkpoint.
type runRecord struct {
	Program         string               `json:"program"`
	Version         string               `json:"version"`
	Device          string               `json:"device"`
	DeviceType      string               `json:"device_type"`
	DeviceVersion   string               `json:"device_version"`
	Platform        string               `json:"platform"`
	PlatformVersion string               `json:"platform_version"`
	DriverVersion   string               `json:"driver_version"`
	KernelSources   string               `json:"kernel_sources"`
	KernelDir       string               `json:"kernel_dir,omitempty"`
	Gemm            string               `json:"gemm"`
	TileEdge        int                  `json:"tile_edge,omitempty"`
	Registers       string               `json:"registers,omitempty"`
	GemmBlocks      []kernels.ShapeBlock `json:"gemm_blocks,omitempty"`
	Programs        []kernels.Program    `json:"programs"`
	SelfCheck       string               `json:"self_check"`
	Args            []string             `json:"args"`
	Settings        recordSettings       `json:"settings"`
	Seed            uint64               `json:"seed"`
}

// recordSettings are the nn.Config a run trains with, under the names of
// the checkpoint's metadata.
type recordSettings struct {
	Sizes       []int   `json:"sizes"`
	Batch       int     `json:"batch"`
	Epochs      int     `json:"epochs"`
	Loss        string  `json:"loss"`
	Optimizer   string  `json:"optimizer"`
	LR          float32 `json:"lr"`
	Momentum    float32 `json:"momentum"`
	WeightDecay float32 `json:"weight_decay"`
	Schedule    string  `json:"schedule"`
	StepEvery   int     `json:"step_every"`
	StepGamma   float32 `json:"step_gamma"`
}

// newRunRecord gathers the record of a run of cfg on rt with the network of
// sizes at batch rows, whose command line was args.
func newRunRecord(rt *nn.Runtime, kernelDir string, sizes []int, rows int, cfg nn.Config, selfCheck string, args []string) (*runRecord, error) {
	hash, err := rt.Kernels.SourcesHash()
	if err != nil {
		return nil, fmt.Errorf("run record: %w", err)
	}
	d, ks := rt.Device, rt.Kernels
	r := &runRecord{
		Program: "mnist-cl", Version: programVersion(),
		Device: d.Name, DeviceType: d.Type.String(), DeviceVersion: d.Version,
		Platform: d.Platform, PlatformVersion: d.PlatformVersion, DriverVersion: d.DriverVersion,
		KernelSources: hash, KernelDir: kernelDir,
		Gemm: ks.Kind().String(), Programs: ks.Programs(),
		SelfCheck: selfCheck, Args: append([]string{}, args...), Seed: cfg.Seed,
		Settings: recordSettings{Sizes: sizes, Batch: cfg.Batch, Epochs: cfg.Epochs, Loss: string(cfg.Loss),
			Optimizer: cfg.Optimizer(), LR: cfg.LR, Momentum: cfg.Momentum, WeightDecay: cfg.WeightDecay,
			Schedule: string(cfg.Schedule), StepEvery: cfg.StepEvery, StepGamma: cfg.StepGamma},
	}
	if ks.Kind() == kernels.GemmRegister {
		r.Registers = fmt.Sprintf("%d x %d floats", ks.Registers().Count, ks.Registers().Width)
		r.GemmBlocks = ks.BlocksFor(nn.Shapes(sizes, rows))
	} else {
		r.TileEdge = ks.TileEdge()
	}
	return r, nil
}

// JSON is the record as one line of JSON, for a checkpoint's metadata.
func (r *runRecord) JSON() string {
	if r == nil {
		return ""
	}
	b, err := json.Marshal(r)
	if err != nil {
		// Every field is a string, a number or a slice of them.
		panic(fmt.Sprintf("run record: %v", err))
	}
	return string(b)
}

// programVersion is the module version and, for a build from a checkout,
// the commit and whether the tree had changes: "(devel) 1a2b3c4d5e6f+dirty".
func programVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		v += " " + rev[:min(12, len(rev))] + dirty
	}
	return v
}
