package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
)

// summary is one metric of one scenario over every round: for each
// binary, the median and the range; with two binaries, the ratio of the
// medians (new / old).
type summary struct {
	Scenario string               `json:"scenario"`
	Metric   string               `json:"metric"`
	New      spread               `json:"new"`
	Old      *spread              `json:"old,omitempty"`
	Ratio    float64              `json:"ratio,omitempty"`
	Errors   map[string]int       `json:"errors,omitempty"`
	Values   map[string][]float64 `json:"values"`
}

// spread is the median and range of a metric's values.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func spreadOf(vs []float64) spread {
	if len(vs) == 0 {
		return spread{}
	}
	s := slices.Sorted(slices.Values(vs))
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{Median: med, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// summarizeRuns folds the results of every round into one row per
// scenario and metric, in the order the scenarios ran. Failed runs are
// counted, not averaged in.
func summarizeRuns(results []result, compare bool) []summary {
	type key struct{ scenario, metric string }
	rows := map[key]*summary{}
	var order []key
	errs := map[string]map[string]int{}
	for _, r := range results {
		if r.Error != "" {
			if errs[r.Name] == nil {
				errs[r.Name] = map[string]int{}
			}
			errs[r.Name][r.Binary]++
			continue
		}
		for _, m := range sortedKeys(r.Metrics) {
			k := key{r.Name, m}
			row := rows[k]
			if row == nil {
				row = &summary{Scenario: r.Name, Metric: m, Values: map[string][]float64{}}
				rows[k] = row
				order = append(order, k)
			}
			row.Values[r.Binary] = append(row.Values[r.Binary], r.Metrics[m])
		}
	}
	var out []summary
	for _, k := range order {
		row := rows[k]
		row.New = spreadOf(row.Values["new"])
		if compare {
			old := spreadOf(row.Values["old"])
			row.Old = &old
			if old.Median != 0 && row.New.N > 0 {
				row.Ratio = row.New.Median / old.Median
			}
		}
		row.Errors = errs[k.scenario]
		out = append(out, *row)
	}
	for name, e := range errs {
		if !slices.ContainsFunc(out, func(s summary) bool { return s.Scenario == name }) {
			out = append(out, summary{Scenario: name, Metric: "error", Errors: e})
		}
	}
	return out
}

func printSummary(w io.Writer, rows []summary, compare bool) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if compare {
		fmt.Fprintln(tw, "\nSCENARIO\tMETRIC\tNEW median [range]\tOLD median [range]\tNEW/OLD")
	} else {
		fmt.Fprintln(tw, "\nSCENARIO\tMETRIC\tmedian [range]")
	}
	for _, r := range rows {
		if r.Metric == "error" {
			fmt.Fprintf(tw, "%s\tFAILED runs\t%v\n", r.Scenario, r.Errors)
			continue
		}
		line := fmt.Sprintf("%s\t%s\t%s", r.Scenario, r.Metric, r.New)
		if compare {
			ratio := "-"
			if r.Ratio != 0 {
				ratio = fmt.Sprintf("%.2f×", r.Ratio)
			}
			line += fmt.Sprintf("\t%s\t%s", r.Old, ratio)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

func (s spread) String() string {
	if s.N == 0 {
		return "-"
	}
	if s.N == 1 {
		return format(s.Median)
	}
	return fmt.Sprintf("%s [%s – %s]", format(s.Median), format(s.Min), format(s.Max))
}
