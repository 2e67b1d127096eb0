package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// procCPU returns the CPU seconds (user + system, every thread) process pid
// has used, from /proc/PID/stat. The resolution is 10 ms.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/PID/stat
// line. The command name (field 2) may contain spaces and parentheses, so
// fields are counted from the last ')'.
func parseStatCPU(b []byte) (float64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: %w", err)
	}
	return float64(ut+st) / clockTicks, nil
}

// procRSS returns the resident set size of process pid in bytes, from
// VmRSS in /proc/PID/status.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusRSS(b)
}

func parseStatusRSS(b []byte) (int64, error) {
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc status: odd VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc status: %w", err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("/proc status: no VmRSS")
}

// cpuMeter measures the server's CPU seconds over an interval (nothing
// with no server PID), and the load tool's own.
type cpuMeter struct {
	pid        int
	start      float64
	self0      float64
	t0         time.Time
	err        error
	selfCPU    float64 // set by stop
	selfCPUErr error
}

func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid, t0: time.Now()}
	if pid > 0 {
		m.start, m.err = procCPU(pid)
	}
	m.self0, m.selfCPUErr = procCPU(os.Getpid())
	return m
}

// stop returns the server CPU seconds and the wall seconds since start
// (cpu is 0 when not measured).
func (m *cpuMeter) stop() (cpu, wall float64, err error) {
	wall = time.Since(m.t0).Seconds()
	if m.selfCPUErr == nil {
		var self float64
		if self, m.selfCPUErr = procCPU(os.Getpid()); m.selfCPUErr == nil {
			m.selfCPU = self - m.self0
		}
	}
	if m.pid <= 0 || m.err != nil {
		return 0, wall, m.err
	}
	end, err := procCPU(m.pid)
	if err != nil {
		return 0, wall, err
	}
	return end - m.start, wall, nil
}

// report adds the load tool's CPU use to r, with a note when the tool, not
// the server, was probably the bottleneck.
func (m *cpuMeter) report(r *Result, wall float64) {
	if m.selfCPUErr != nil {
		return
	}
	util := perSecond(m.selfCPU, wall)
	r.add("tool_cpu_util", util, "cores", "")
	if procs := float64(runtime.GOMAXPROCS(0)); util > 0.85*procs {
		r.note("the load tool used %.2f of its %g core(s): figures other than per-server-CPU-second ones are bounded by the tool", util, procs)
	}
}

// raiseNoFile raises the soft open-files limit to the hard limit and returns
// the new soft limit.
func raiseNoFile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, err
		}
	}
	return rl.Cur, nil
}

// serverStats fetches the benchserver's /debug/stats.
func serverStats(url string) (map[string]float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	var m map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return m, nil
}

// measureWindow lets the workers warm up, then turns measure on for the
// scenario's duration while metering the server's CPU, and returns the
// meter (stopped) with the CPU and wall seconds of the window.
func measureWindow(ctx context.Context, c *config, measure *atomic.Bool) (m *cpuMeter, cpu, wall float64, err error) {
	sleep(ctx, c.warmup)
	measure.Store(true)
	m = startCPU(c.serverPID)
	sleep(ctx, c.duration)
	measure.Store(false)
	cpu, wall, err = m.stop()
	return m, cpu, wall, err
}

// addRates records a count, its rate per wall second and, when the server's
// PID is known, per server CPU-second with the server's CPU use.
func (r *Result) addRates(name string, n float64, unit string, pid int, cpu, wall float64) {
	r.add(name, n, unit, "")
	r.add(name+"_per_s", perSecond(n, wall), unit+"/s", "higher")
	if pid > 0 {
		r.add("server_cpu_s", cpu, "s", "")
		r.add(name+"_per_cpu_s", perSecond(n, cpu), unit+"/cpu-s", "higher")
		r.add("server_cpu_util", perSecond(cpu, wall), "cores", "")
	}
}
