package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/onboard/onboard/internal/testenv"
)

const (
	// BrowserVar names the Chromium binary of the browser tests;
	// DefaultBrowser when unset.
	BrowserVar = "CHROMIUM"
	// DefaultBrowser is where Debian's chromium package puts the browser.
	DefaultBrowser = "/usr/bin/chromium"
	// RequireBrowserVar=1 makes a missing browser fail the browser tests
	// instead of skipping them, as REQUIRE_SERVICES=1 does for the services.
	RequireBrowserVar = "REQUIRE_BROWSER"
	// BrowserTimeout bounds what a test does in one tab of the browser.
	BrowserTimeout = time.Minute
)

// Browser starts a headless Chromium for the test, in a profile of its
// own, and returns its context, from which NewTab opens tabs; the browser
// stops when the test ends. Under -short the test is skipped, like every
// end-to-end test. Without a browser (BrowserVar, else DefaultBrowser)
// the test is skipped, and fails under REQUIRE_BROWSER=1.
func Browser(t testing.TB) context.Context {
	t.Helper()
	testenv.SkipIfShort(t, "browser test (runs the built binary and Chromium)")
	path := browserPath(t, os.Getenv)
	output := &testenv.LockedBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		// The tests run as root in CI, where Chromium's sandbox will not
		// start; the browser only visits the service on the loopback.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// Nothing but the service: no updates, sync, QUIC or other
		// background requests to a network the tests do not have.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.CombinedOutput(output),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium's output:\n%s", output.String())
		}
	})
	// The first run starts the browser; it takes no timeout, which would
	// stop the browser when it expired.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v\n%s", path, err, output.String())
	}
	return ctx
}

// NewTab opens a tab of the browser in a browser context of its own (no
// cookie or cache shared with another tab), closed when the test ends.
// What runs in it must be done within BrowserTimeout.
func NewTab(t testing.TB, browser context.Context) context.Context {
	t.Helper()
	tab, closeTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(closeTab)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, BrowserTimeout)
	t.Cleanup(cancel)
	return ctx
}

// browserPath returns the path of the browser, or skips the test (fails it
// under REQUIRE_BROWSER=1) when there is none.
func browserPath(t testing.TB, getenv func(string) string) string {
	t.Helper()
	path := getenv(BrowserVar)
	if path == "" {
		path = DefaultBrowser
	}
	err := executable(path)
	if err == nil {
		return path
	}
	if getenv(RequireBrowserVar) == "1" {
		t.Fatalf("no browser: %v, and %s=1: this browser test must run (install chromium, or set %s to its path)",
			err, RequireBrowserVar, BrowserVar)
		return ""
	}
	t.Skipf("no browser: %v: skipping this browser test (install chromium, or set %s to its path; %s=1 makes this a failure)",
		err, BrowserVar, RequireBrowserVar)
	return ""
}

// executable tells why path is not a file that may be run, nil when it is.
func executable(path string) error {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s does not exist", path)
	case err != nil:
		return err
	case info.IsDir() || info.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}
