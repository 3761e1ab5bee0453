package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/service"
	"github.com/onboard/onboard/service/operator"
)

// instruction is one instruction of a Dockerfile, its continuation lines
// joined.
type instruction struct{ Keyword, Args string }

// dockerfile reads the project's Dockerfile.
func dockerfile(t *testing.T) []instruction {
	t.Helper()
	data, err := os.ReadFile("../Dockerfile")
	require.NoError(t, err)
	var out []instruction
	var current string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue // comments may stand between continuation lines too
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			current += strings.TrimSpace(cont) + " "
			continue
		}
		current += line
		keyword, args, _ := strings.Cut(current, " ")
		out = append(out, instruction{strings.ToUpper(keyword), strings.TrimSpace(args)})
		current = ""
	}
	require.Empty(t, current, "the Dockerfile ends in a continuation")
	return out
}

// lastArgs returns the arguments of the last instruction with keyword.
func lastArgs(t *testing.T, instructions []instruction, keyword string) string {
	t.Helper()
	for i := len(instructions) - 1; i >= 0; i-- {
		if instructions[i].Keyword == keyword {
			return instructions[i].Args
		}
	}
	t.Fatalf("the Dockerfile has no %s", keyword)
	return ""
}

// makeRecipe returns the recipe lines of a Makefile target.
func makeRecipe(t *testing.T, target string) []string {
	t.Helper()
	data, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	_, after, found := strings.Cut(string(data), "\n"+target+":")
	require.True(t, found, "the Makefile has a %s target", target)
	var recipe []string
	for _, line := range strings.Split(after, "\n")[1:] {
		cmd, ok := strings.CutPrefix(line, "\t")
		if !ok {
			break
		}
		recipe = append(recipe, strings.TrimPrefix(cmd, "@"))
	}
	return recipe
}

// The image builds the binary with make build's command (make run's too),
// the modules downloaded in a layer before the source comes in.
func TestDockerfile_BuildsLikeTheMakefile(t *testing.T) {
	binaryLine := func(recipe []string) string {
		for _, line := range recipe {
			if strings.Contains(line, "-o bin/onboard ") {
				return line
			}
		}
		t.Fatalf("no line builds bin/onboard in %q", recipe)
		return ""
	}
	// Make reads $$ as the shell's $.
	makeBuild := strings.ReplaceAll(binaryLine(makeRecipe(t, "build")), "$$", "$")
	assert.Equal(t, makeBuild, strings.ReplaceAll(binaryLine(makeRecipe(t, "run")), "$$", "$"))

	instructions := dockerfile(t)
	var build []string
	steps := map[string]int{}
	for i, in := range instructions {
		steps[in.Keyword+" "+in.Args] = i
		if in.Keyword == "RUN" && strings.Contains(in.Args, "go build") {
			args := regexp.MustCompile(`^(--mount=\S+\s+)*`).ReplaceAllString(in.Args, "")
			build = append(build, strings.Replace(args, "-o /out/onboard ", "-o bin/onboard ", 1))
		}
	}
	assert.Equal(t, []string{makeBuild}, build, "the Dockerfile's build is make build's")

	modules, downloaded, source := "COPY go.mod go.sum ./", "RUN go mod download", "COPY . ."
	for _, step := range []string{modules, downloaded, source} {
		require.Contains(t, steps, step)
	}
	assert.Less(t, steps[modules], steps[downloaded])
	assert.Less(t, steps[downloaded], steps[source])

	goMod, err := os.ReadFile("../go.mod")
	require.NoError(t, err)
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
	require.NotNil(t, goVersion)
	assert.Equal(t, "golang:"+string(goVersion[1])+"-bookworm AS build", instructions[0].Args,
		"the build stage runs go.mod's Go")
}

// The final stage has no shell and no compiler, runs as a numeric non-root
// user, and its health check is the binary's own subcommand.
func TestDockerfile_FinalStage(t *testing.T) {
	instructions := dockerfile(t)
	assert.Equal(t, "gcr.io/distroless/static-debian12:nonroot", lastArgs(t, instructions, "FROM"))
	assert.NotZero(t, imageUID(t), "a non-root user")
	assert.Equal(t, "65532:65532", lastArgs(t, instructions, "USER"), "distroless's nonroot user")
	assert.Equal(t, "--from=build /out/onboard /onboard", lastArgs(t, instructions, "COPY"))
	assert.Equal(t, `["/onboard"]`, lastArgs(t, instructions, "ENTRYPOINT"))
	assert.Equal(t, strings.TrimPrefix(service.DefaultHTTPAddr, ":"), lastArgs(t, instructions, "EXPOSE"),
		"EXPOSE is HTTP_ADDR's default port")

	healthcheck := lastArgs(t, instructions, "HEALTHCHECK")
	_, command, found := strings.Cut(healthcheck, " CMD ")
	require.True(t, found, healthcheck)
	var argv []string
	require.NoError(t, json.Unmarshal([]byte(command), &argv), "the exec form: there is no shell")
	require.NotEmpty(t, argv)
	assert.Equal(t, "/onboard", argv[0])
	kind, err := operator.ParseArgs(argv[1:])
	require.NoError(t, err)
	assert.Equal(t, operator.Command, kind)
	assert.Equal(t, []string{"healthcheck"}, argv[1:])
}

// .dockerignore keeps the history and local builds out of the build
// context, and nothing the binary is built from: the folders of its
// packages and scripts/build-tags.sh, which the build runs.
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile("../.dockerignore")
	require.NoError(t, err)
	var patterns []string
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, strings.TrimSuffix(line, "/"))
		}
	}
	for _, kept := range []string{".git", "bin", "data"} {
		assert.Contains(t, patterns, kept)
	}

	// The folders of the module's packages that the binary is built from
	// (go:embed files included), relative to the module's root.
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}",
		"../cmd/app").Output()
	require.NoError(t, err)
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	needed := []string{"go.mod", "go.sum", "scripts/build-tags.sh"}
	for dir := range strings.FieldsSeq(string(out)) {
		rel, err := filepath.Rel(root, dir)
		require.NoError(t, err)
		needed = append(needed, filepath.ToSlash(rel))
	}
	require.Contains(t, needed, "cmd/app")
	// As Docker reads it: the last pattern that matches a path, or a folder
	// it is in, decides; one that starts with ! keeps the path.
	for _, path := range needed {
		left := ""
		for _, pattern := range patterns {
			exception := strings.HasPrefix(pattern, "!")
			for prefix := path; prefix != "."; prefix = filepath.Dir(prefix) {
				matched, err := filepath.Match(strings.TrimPrefix(pattern, "!"), prefix)
				require.NoError(t, err, pattern)
				if matched {
					left = pattern
					if exception {
						left = ""
					}
					break
				}
			}
		}
		assert.Empty(t, left, ".dockerignore's %s leaves out %s", left, path)
	}
}
