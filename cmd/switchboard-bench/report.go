package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
)

// A target is a goal of the performance issue, as a ratio of the first
// server's median to the second's.
type target struct {
	atLeast bool // ratio ≥ factor; otherwise ratio ≤ factor
	factor  float64
}

func (t target) String() string {
	if t.atLeast {
		return fmt.Sprintf("≥ %g×", t.factor)
	}
	return fmt.Sprintf("≤ %g×", t.factor)
}

func (t target) met(ratio float64) bool {
	if t.atLeast {
		return ratio >= t.factor
	}
	return ratio <= t.factor
}

// targets are keyed by scenario/metric.
var targets = map[string]target{
	"fanout/deliveries_per_cpu_s": {true, 5},
	"fanout-paced/latency_p99_ms": {false, 0.7},
	"echo/round_trips_per_cpu_s":  {true, 2.5},
	"echo/latency_p99_ms":         {false, 0.7},
	"conns/rss_per_conn_kb":       {false, 0.5},
	"handshake/handshakes_per_s":  {true, 2},
}

// scenarioOrder is the order of the report's rows.
var scenarioOrder = []string{"fanout", "fanout-paced", "echo", "conns", "handshake", "durable"}

func runReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchboard-bench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	a := fs.String("a", "switchboard", "`label` of the server in the numerator")
	b := fs.String("b", "node", "`label` of the server in the denominator")
	format := fs.String("format", "markdown", "markdown or text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("report: no result files")
	}
	var results []Result
	for _, name := range fs.Args() {
		rs, err := readResults(name)
		if err != nil {
			return err
		}
		results = append(results, rs...)
	}
	rep := buildReport(results, *a, *b)
	return rep.print(stdout, *format == "markdown")
}

// readResults reads the JSON lines of a file; other lines are skipped.
func readResults(name string) ([]Result, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// A reportRow is one figure of one scenario, with the medians of both
// servers.
type reportRow struct {
	scenario, metric, unit string
	a, b                   float64
	na, nb                 int // runs
	hasA, hasB             bool
}

type report struct {
	la, lb string
	rows   []reportRow
	params map[string]map[string]any
	floor  float64 // median round trips per CPU-second of the raw-TCP echo (label floorLabel); 0 if none

	// The raw-TCP paced fan-out's medians (label floorLabel); 0 if none.
	fanoutFloorP99, fanoutFloorToolUS, fanoutFloorServerUS float64
}

// floorLabel labels the raw-TCP floors (tcp-echo and tcp-fanout against
// tcp-floor-server).
const floorLabel = "tcp-floor"

// printFloor reads the servers' echo figures as shares of the raw-TCP
// floor measured in the same run, and their paced fan-out latency against
// the raw-TCP fan-out's.
func (rep *report) printFloor(w io.Writer, markdown bool) {
	prefix := ""
	if markdown {
		prefix = "- "
	}
	rep.printFanoutFloor(w, prefix)
	if rep.floor <= 0 {
		return
	}
	fmt.Fprintf(w, "\nRaw-TCP floor (a plain Go echo server under the echo scenario's load pattern): %s round trips per server CPU-second.\n", formatValue(rep.floor))
	for _, r := range rep.rows {
		if r.scenario != "echo" || r.metric != "round_trips_per_cpu_s" {
			continue
		}
		if r.hasA {
			fmt.Fprintf(w, "%s%s echo: %.0f%% of the floor\n", prefix, rep.la, 100*r.a/rep.floor)
		}
		if r.hasB {
			fmt.Fprintf(w, "%s%s echo: %.0f%% of the floor\n", prefix, rep.lb, 100*r.b/rep.floor)
		}
	}
}

// printFanoutFloor prints the raw-TCP paced fan-out: the latency a load
// tool of this kind observes when the server costs next to nothing.
func (rep *report) printFanoutFloor(w io.Writer, prefix string) {
	if rep.fanoutFloorP99 <= 0 {
		return
	}
	fmt.Fprintf(w, "\nRaw-TCP paced fan-out floor (a plain Go server writing each event to every receiver, plain Go receivers on the load tool's core): latency p99 %s ms; the server %s µs and the tool %s µs of CPU per delivery.\n",
		formatValue(rep.fanoutFloorP99), formatValue(rep.fanoutFloorServerUS), formatValue(rep.fanoutFloorToolUS))
	for _, r := range rep.rows {
		if r.scenario != "fanout-paced" || r.metric != "latency_p99_ms" {
			continue
		}
		if r.hasA {
			fmt.Fprintf(w, "%s%s fanout-paced p99: %.2f× the floor's\n", prefix, rep.la, r.a/rep.fanoutFloorP99)
		}
		if r.hasB {
			fmt.Fprintf(w, "%s%s fanout-paced p99: %.2f× the floor's\n", prefix, rep.lb, r.b/rep.fanoutFloorP99)
		}
	}
}

func buildReport(results []Result, la, lb string) *report {
	type key struct{ scenario, metric string }
	vals := map[key]map[string][]float64{}
	units := map[key]string{}
	var keys []key
	params := map[string]map[string]any{}
	for _, r := range results {
		if _, ok := params[r.Scenario]; !ok {
			params[r.Scenario] = r.Params
		}
		for _, m := range r.Metrics {
			k := key{r.Scenario, m.Name}
			if vals[k] == nil {
				vals[k] = map[string][]float64{}
				units[k] = m.Unit
				keys = append(keys, k)
			}
			vals[k][r.Label] = append(vals[k][r.Label], m.Value)
		}
	}
	rank := func(s string) int {
		if i := slices.Index(scenarioOrder, s); i >= 0 {
			return i
		}
		return len(scenarioOrder)
	}
	// Known scenarios first, in their order; others as they came.
	sort.SliceStable(keys, func(i, j int) bool { return rank(keys[i].scenario) < rank(keys[j].scenario) })
	rep := &report{la: la, lb: lb, params: params}
	for _, k := range keys {
		row := reportRow{scenario: k.scenario, metric: k.metric, unit: units[k]}
		if v := vals[k][la]; len(v) > 0 {
			row.a, row.na, row.hasA = median(v), len(v), true
		}
		if v := vals[k][lb]; len(v) > 0 {
			row.b, row.nb, row.hasB = median(v), len(v), true
		}
		if v := vals[k][floorLabel]; len(v) > 0 {
			switch k {
			case key{"tcp-echo", "round_trips_per_cpu_s"}:
				rep.floor = median(v)
			case key{"tcp-fanout-paced", "latency_p99_ms"}:
				rep.fanoutFloorP99 = median(v)
			case key{"tcp-fanout-paced", "tool_cpu_per_delivery_us"}:
				rep.fanoutFloorToolUS = median(v)
			case key{"tcp-fanout-paced", "server_cpu_per_delivery_us"}:
				rep.fanoutFloorServerUS = median(v)
			}
		}
		if !row.hasA && !row.hasB {
			continue // the floor's own figures are summarised after the table
		}
		rep.rows = append(rep.rows, row)
	}
	return rep
}

// median returns the median of v (the mean of the middle two for an even
// count).
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func (rep *report) print(w io.Writer, markdown bool) error {
	bw := bufio.NewWriter(w)
	sep := " | "
	line := func(cells ...string) {
		if markdown {
			fmt.Fprintf(bw, "| %s |\n", strings.Join(cells, sep))
		} else {
			fmt.Fprintf(bw, "%-13s %-28s %-13s %14s %14s %9s %s\n", toAny(cells)...)
		}
	}
	line("scenario", "figure", "unit", rep.la, rep.lb, rep.la+" / "+rep.lb, "target")
	if markdown {
		fmt.Fprintln(bw, "|---|---|---|--:|--:|--:|---|")
	}
	for _, r := range rep.rows {
		cell := func(ok bool, v float64) string {
			if !ok {
				return "–"
			}
			return formatValue(v)
		}
		ratio := "–"
		var rv float64
		if r.hasA && r.hasB && r.b != 0 {
			rv = r.a / r.b
			ratio = fmt.Sprintf("%.2f", rv)
		}
		tgt := ""
		if t, ok := targets[r.scenario+"/"+r.metric]; ok && t.factor > 0 {
			tgt = t.String()
			if ratio != "–" {
				if t.met(rv) {
					tgt += " met"
				} else {
					tgt += " **not met**"
					if !markdown {
						tgt = t.String() + " NOT MET"
					}
				}
			}
		}
		line(r.scenario, r.metric, r.unit, cell(r.hasA, r.a), cell(r.hasB, r.b), ratio, tgt)
	}
	rep.printFloor(bw, markdown)
	var names []string
	for s := range rep.params {
		names = append(names, s)
	}
	sort.Strings(names)
	fmt.Fprintln(bw)
	for _, s := range names {
		p := rep.params[s]
		var ks []string
		for k := range p {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		var kv []string
		for _, k := range ks {
			kv = append(kv, fmt.Sprintf("%s=%v", k, p[k]))
		}
		prefix := ""
		if markdown {
			prefix = "- "
		}
		fmt.Fprintf(bw, "%s%s: %s\n", prefix, s, strings.Join(kv, " "))
	}
	return bw.Flush()
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
