// Command kstatus prints the verdict of sigs.k8s.io/cli-utils/pkg/kstatus for
// Kubernetes objects: the library Flux's health checks, `kubectl`-adjacent
// tools and kpt use to decide whether an object is Current, InProgress or
// Failed. The tests (tests/unit/test_kstatus_table.py) feed it our own
// resources in every state the operator produces.
//
// Input: YAML or JSON objects on stdin (several YAML documents, or JSON
// objects one after another). Output: one JSON line per object,
// {"status": "...", "message": "..."}; exit 1 with a message on bad input.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: kstatus < objects.yaml (prints one JSON verdict per object)")
		os.Exit(2)
	}
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	decoder := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(in), 4096)
	encoder := json.NewEncoder(out)
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := decoder.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("object %d: %w", n, err)
		}
		if len(raw) == 0 || string(raw) == "null" { // an empty YAML document
			continue
		}
		// Through Unstructured's own decoder, as a client reads objects: numbers
		// become int64 (metadata.generation), not float64.
		object := &unstructured.Unstructured{}
		if err := object.UnmarshalJSON(raw); err != nil {
			return fmt.Errorf("object %d: %w", n, err)
		}
		result, err := status.Compute(object)
		if err != nil {
			return fmt.Errorf("object %d: %w", n, err)
		}
		if err := encoder.Encode(verdict{Status: result.Status.String(), Message: result.Message}); err != nil {
			return err
		}
	}
}
