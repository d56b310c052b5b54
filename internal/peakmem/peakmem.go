// Package peakmem measures the peak resident memory and the duration of
// some work (loading a checkpoint, say) in a child process of a test
// binary, so that what the test process holds already does not count. It
// is for benchmarks: a benchmark calls Run, which starts the binary again
// running one test; that test calls Child to learn that it is the child
// (and what to load) and Measure to do the work.
//
// The figures come from /proc/self/status (VmRSS before the work, VmHWM,
// the high-water mark, after it), cross-checked with getrusage's maxrss
// of the child, so Run works on Linux only and returns an error
// elsewhere.
package peakmem

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Result is what Measure records in the child.
type Result struct {
	BaselineKB int64   // resident set before the work (VmRSS), in kB of 1024 bytes
	PeakKB     int64   // the process's peak resident set after it (VmHWM), in kB
	Kept       int64   // bytes the work says it keeps (the data it loaded)
	Seconds    float64 // the work's duration
}

// OverheadBytes returns the peak resident set beyond the baseline and what
// the work keeps: what it held only while working.
func (r Result) OverheadBytes() int64 { return 1024*(r.PeakKB-r.BaselineKB) - r.Kept }

const (
	envArg       = "ACTQ_PEAKMEM_ARG"
	resultPrefix = "PEAKMEM_RESULT "
)

// Run runs the test called test of the running test binary in a new
// process, in which Child returns path (and, if cold, first drops it from
// the page cache), and returns the Result that the test printed with
// Measure. It returns an error if the child fails or prints no result, or
// if its peak is more than 2 MB above getrusage's maxrss of the child.
func Run(test, path string, cold bool) (Result, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envArg+"="+strconv.FormatBool(cold)+":"+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return Result{}, fmt.Errorf("peakmem: child %s: %v\n%s", test, err, out)
	}
	for line := range strings.Lines(string(out)) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), resultPrefix)
		if !ok {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(rest), &r); err != nil {
			return r, fmt.Errorf("peakmem: child %s: %v", test, err)
		}
		// maxrss is an upper bound of the child's own peak, not the peak:
		// Linux starts it at the high-water mark of the parent's memory,
		// whose image the child shared until exec, and it also sees what
		// the child did after Measure. VmHWM above it (beyond the two
		// counts' small differences) means one of them is not what we
		// think.
		if m, ok := maxRSSKB(cmd.ProcessState); ok && m < r.PeakKB-2048 {
			return r, fmt.Errorf("peakmem: child %s: maxrss %d kB, VmHWM %d kB", test, m, r.PeakKB)
		}
		return r, nil
	}
	return Result{}, fmt.Errorf("peakmem: child %s printed no result:\n%s", test, out)
}

// Child returns the path Run gave this process, and whether this process
// is Run's child at all (a test that finds it is not should Skip). For a
// cold run it first drops path (every regular file in it, for a
// directory) from the page cache (DropCache), and returns DropCache's
// error.
func Child() (path string, ok bool, err error) {
	arg, ok := os.LookupEnv(envArg)
	if !ok {
		return "", false, nil
	}
	cold, path, _ := strings.Cut(arg, ":")
	if cold != "true" {
		return path, true, nil
	}
	files := []string{path}
	if entries, err := os.ReadDir(path); err == nil {
		files = files[:0]
		for _, e := range entries {
			if e.Type().IsRegular() {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	}
	for _, f := range files {
		if err := DropCache(f); err != nil {
			return path, true, err
		}
	}
	return path, true, nil
}

// Measure records the resident set, runs work, which returns the number
// of bytes it keeps, records the peak and the duration, and prints the
// Result for Run. It returns work's error or one reading /proc.
func Measure(work func() (kept int64, err error)) error {
	base, err := StatusKB("VmRSS")
	if err != nil {
		return err
	}
	start := time.Now()
	kept, err := work()
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	peak, err := StatusKB("VmHWM")
	if err != nil {
		return err
	}
	out, _ := json.Marshal(Result{BaselineKB: base, PeakKB: peak, Kept: kept, Seconds: elapsed.Seconds()})
	fmt.Printf("%s%s\n", resultPrefix, out)
	return nil
}

// StatusKB returns a field of /proc/self/status (VmRSS, VmHWM, …), in kB.
func StatusKB(field string) (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("peakmem: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("peakmem: /proc/self/status: %s: %w", field, err)
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("peakmem: no %s in /proc/self/status: %w", field, errors.ErrUnsupported)
}
