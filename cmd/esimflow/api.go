package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/spf13/cobra"
)

// defaultAPI is where `esimflow run` serves its internal API.
const defaultAPI = "http://127.0.0.1:8081"

// errNotFound is an API's 404: the entity does not exist.
var errNotFound = errors.New("not found")

// get fetches path and returns the status and body.
func (c *apiClient) get(ctx context.Context, path string) (int, []byte, error) {
	return c.send(ctx, http.MethodGet, path)
}

// getJSON fetches path, expecting 200, into v; a 404 is errNotFound.
func (c *apiClient) getJSON(ctx context.Context, path string, v any) error {
	err := c.do(ctx, http.MethodGet, path, v)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return errNotFound
	case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		return fmt.Errorf("GET %s%s: 401: set --token or ESIMFLOW_ADMIN_TOKEN", c.base, path)
	case errors.As(err, &ae):
		return fmt.Errorf("GET %s%s: %w", c.base, path, err)
	}
	return err
}

// field is one member of a JSON object, in the order the API sent it.
type field struct {
	key   string
	value json.RawMessage
}

// orderedObject reads a JSON object's members in order.
func orderedObject(body []byte) ([]field, error) {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("want a JSON object, got %.80s", body)
	}
	var out []field
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, field{key: t.(string), value: v})
	}
	return out, nil
}

// printEntity prints an order or profile as FIELD/VALUE lines, then each
// list of objects (the history) as a table of its own. Fields are printed as
// the API sends them, so a field added to the API shows without a change here.
func printEntity(w io.Writer, body []byte) error {
	fields, err := orderedObject(body)
	if err != nil {
		return err
	}
	tw := newTable(w)
	var lists []field
	for _, f := range fields {
		var objs []map[string]any
		if json.Unmarshal(f.value, &objs) == nil && len(objs) > 0 {
			lists = append(lists, f)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\n", cell(f.key), scalar(f.key, f.value))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, l := range lists {
		if err := printList(w, l); err != nil {
			return err
		}
	}
	return nil
}

func printList(w io.Writer, l field) error {
	var rows []json.RawMessage
	if err := json.Unmarshal(l.value, &rows); err != nil {
		return err
	}
	var cols []string
	seen := map[string]bool{}
	parsed := make([]map[string]json.RawMessage, 0, len(rows))
	for _, r := range rows {
		fs, err := orderedObject(r)
		if err != nil {
			return err
		}
		m := map[string]json.RawMessage{}
		for _, f := range fs {
			m[f.key] = f.value
			if !seen[f.key] {
				seen[f.key] = true
				cols = append(cols, f.key)
			}
		}
		parsed = append(parsed, m)
	}
	fmt.Fprintf(w, "\n%s:\n", cell(l.key))
	tw := newTable(w)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = cell(header(c))
	}
	fmt.Fprintln(tw, strings.Join(heads, "\t"))
	for _, m := range parsed {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = scalar(c, m[c])
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// header turns a JSON name into a column title: previousStatus → PREVIOUS STATUS.
func header(name string) string {
	var b strings.Builder
	for i, r := range name {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// scalar renders a JSON value for a table cell: strings bare, lists of
// strings comma-joined, byte volumes with a readable size beside them.
func scalar(key string, v json.RawMessage) string {
	if len(v) == 0 || string(v) == "null" {
		return "-"
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if s == "" {
			return "-"
		}
		return cell(s)
	}
	var list []string
	if json.Unmarshal(v, &list) == nil {
		if len(list) == 0 {
			return "-"
		}
		return cell(strings.Join(list, ","))
	}
	var n float64
	if strings.HasSuffix(key, "Volume") && json.Unmarshal(v, &n) == nil && n >= 1024 {
		return fmt.Sprintf("%s (%s)", v, bytesText(n))
	}
	return cell(string(v))
}

func bytesText(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if n == float64(int64(n)) {
		return fmt.Sprintf("%d %s", int64(n), units[i])
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// getEntity runs `esimflow order|profile ID`. With several APIs, the service
// that owns the route answers (the processor); the others do not serve it.
func getEntity(cmd *cobra.Command, clients []*apiClient, asJSON bool, what, id, path string) error {
	var errs []error
	var bases []string
	for _, c := range clients {
		bases = append(bases, c.base)
		status, body, err := c.get(cmd.Context(), path)
		switch {
		case err != nil:
			errs = append(errs, err)
			continue
		case status == http.StatusNotFound && json.Valid(body):
			return fmt.Errorf("%s %s: %w", what, id, errNotFound)
		case status == http.StatusNotFound:
			continue // a service that does not own the route
		case status == http.StatusUnauthorized:
			errs = append(errs, fmt.Errorf("GET %s%s: 401: set --token or ESIMFLOW_ADMIN_TOKEN", c.base, path))
			continue
		case status != http.StatusOK:
			errs = append(errs, fmt.Errorf("GET %s%s: %d: %s", c.base, path, status, errorMessage(body)))
			continue
		}
		if asJSON {
			var out bytes.Buffer
			if err := json.Indent(&out, body, "", "  "); err != nil {
				return fmt.Errorf("GET %s%s: %w", c.base, path, err)
			}
			out.WriteByte('\n')
			return writeJSON(cmd.OutOrStdout(), out.Bytes())
		}
		return printEntity(cmd.OutOrStdout(), body)
	}
	if len(errs) == 0 {
		return fmt.Errorf("none of the APIs %s serves %s", strings.Join(bases, ", "), path)
	}
	return errors.Join(errs...)
}
