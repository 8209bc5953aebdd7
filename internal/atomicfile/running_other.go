//go:build !unix

package atomicfile

// running cannot ask the system here; saying yes leaves RemoveStale to the
// files' age.
func running(pid int) bool { return true }
