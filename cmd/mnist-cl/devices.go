package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/mnist-cl/mnist-cl/cl"
	"github.com/mnist-cl/mnist-cl/nn"
)

const devicesHelp = `Lists every OpenCL platform and device with its properties.
The device marked * is the one train and verify use without --device.`

func runDevices(e *env, args []string) error {
	fs := newFlags("devices")
	if err := parse(e, fs, "", devicesHelp, args); err != nil {
		return err
	}
	devs, err := cl.AllDevices()
	if err != nil {
		return err
	}
	// A bad MNISTCL_DEVICE is a warning here: this is where a user looks for
	// a selector that works.
	mark := -1
	if def, err := cl.Choose(devs, e.getenv("MNISTCL_DEVICE")); err == nil {
		mark = def.Index
	} else {
		fmt.Fprintf(e.stderr, "mnist-cl devices: MNISTCL_DEVICE: %v\n", err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	for _, d := range devs {
		star := " "
		if d.Index == mark {
			star = "*"
		}
		fmt.Fprintf(tw, "%s %d\t%s\t%s, %s\n", star, d.Index, d.Name, d.Type, d.Vendor)
		fmt.Fprintf(tw, "\tplatform\t%s (%s), %s\n", d.Platform, d.PlatformVendor, d.PlatformVersion)
		fmt.Fprintf(tw, "\tversion\t%s, driver %s, %s\n", d.Version, d.DriverVersion, d.OpenCLCVersion)
		fmt.Fprintf(tw, "\tcompute units\t%d\n", d.ComputeUnits)
		fmt.Fprintf(tw, "\tfloat vectors\t%d native, %d preferred\n", d.NativeFloatVector, d.PreferredFloatVector)
		fmt.Fprintf(tw, "\tglobal memory\t%s (largest allocation %s)\n", nn.FormatBytes(d.GlobalMem), nn.FormatBytes(d.MaxAlloc))
		fmt.Fprintf(tw, "\tlocal memory\t%s\n", nn.FormatBytes(d.LocalMem))
		fmt.Fprintf(tw, "\tmax work-group\t%d\n", d.MaxWorkGroupSize)
	}
	return tw.Flush()
}
