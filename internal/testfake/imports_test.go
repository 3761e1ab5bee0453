package testfake_test

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The fakes stand in for the adapters: they are built on what the
// application declares (app, domain), never on an adapter, a port or the
// wiring, so that a test of the application links none of them.
func TestFakesImportNoAdapterNorPort(t *testing.T) {
	const module = "github.com/onboard/onboard/"
	denied := []string{"adapters", "ports", "service", "cmd", "internal/testenv"}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for _, entry := range entries {
		name := entry.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		files++
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, spec := range f.Imports {
			path, _ := strconv.Unquote(spec.Path.Value)
			for _, prefix := range denied {
				if path == module+prefix || strings.HasPrefix(path, module+prefix+"/") {
					t.Errorf("%s imports %s", name, path)
				}
			}
		}
	}
	if files == 0 {
		t.Fatal("no file of the package read")
	}
}
