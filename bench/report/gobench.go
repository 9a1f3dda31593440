package report

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// ParseGoBench reads `go test -bench -benchmem` output (several packages, any
// -count) and returns one Micro per package and benchmark, in the order first
// seen, with every count's figures.
func ParseGoBench(r io.Reader) ([]Micro, error) {
	var (
		out   []Micro
		index = map[string]int{}
		pkg   string
	)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // a benchmark's log line, not its result
		}
		name := TrimProcs(strings.TrimPrefix(f[0], "Benchmark"))
		key := pkg + " " + name
		i, ok := index[key]
		if !ok {
			i = len(out)
			index[key] = i
			out = append(out, Micro{Package: pkg, Name: name})
		}
		for j := 2; j+1 < len(f); j += 2 {
			v, err := strconv.ParseFloat(f[j], 64)
			if err != nil {
				continue
			}
			switch f[j+1] {
			case "ns/op":
				out[i].NsOp = append(out[i].NsOp, v)
			case "B/op":
				out[i].BytesOp = append(out[i].BytesOp, v)
			case "allocs/op":
				out[i].AllocsOp = append(out[i].AllocsOp, v)
			}
		}
	}
	return out, sc.Err()
}

// TrimProcs drops the -GOMAXPROCS suffix go test adds ("Key-2" → "Key").
func TrimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}
