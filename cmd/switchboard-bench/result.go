package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// A Result is what one scenario run measured. With -json it is printed as
// one line of JSON, which `switchboard-bench report` aggregates.
type Result struct {
	Scenario string         `json:"scenario"`
	Label    string         `json:"label,omitempty"`
	Time     time.Time      `json:"time"`
	Params   map[string]any `json:"params"`
	Metrics  []Metric       `json:"metrics"`
	Notes    []string       `json:"notes,omitempty"`
}

// A Metric is one figure of a Result.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Better is "higher", "lower" or "" (informational).
	Better string `json:"better,omitempty"`
}

func (r *Result) add(name string, v float64, unit, better string) {
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: v, Unit: unit, Better: better})
}

func (r *Result) addLatency(prefix string, h *histogram) {
	r.add(prefix+"_p50_ms", ms(h.Quantile(0.50)), "ms", "lower")
	r.add(prefix+"_p99_ms", ms(h.Quantile(0.99)), "ms", "lower")
	r.add(prefix+"_max_ms", ms(h.Max()), "ms", "lower")
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Metric returns the value of the named metric.
func (r *Result) Metric(name string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// perSecond returns n/secs, 0 when secs is not positive.
func perSecond(n, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return n / secs
}

// print writes r as JSON or as a table.
func (r *Result) print(w io.Writer, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	keys := make([]string, 0, len(r.Params))
	for k := range r.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var params []string
	for _, k := range keys {
		params = append(params, fmt.Sprintf("%s=%v", k, r.Params[k]))
	}
	label := ""
	if r.Label != "" {
		label = " [" + r.Label + "]"
	}
	fmt.Fprintf(w, "%s%s  %s\n", r.Scenario, label, strings.Join(params, " "))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	for _, m := range r.Metrics {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t\n", m.Name, formatValue(m.Value), m.Unit)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	return nil
}

// formatValue prints a figure with about three significant digits after
// the thousands.
func formatValue(v float64) string {
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v) && a < 1e15:
		return groupThousands(fmt.Sprintf("%.0f", v))
	case a >= 1000:
		return groupThousands(fmt.Sprintf("%.0f", v))
	case a >= 100:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func groupThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
