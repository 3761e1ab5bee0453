package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/domain"
)

// EmailAllowance is how many emails one subject may cause in a window of
// Per; the zero value allows any number.
type EmailAllowance struct {
	Count int
	Per   time.Duration
}

// EmailBudgetConfig configures EmailBudget.
type EmailBudgetConfig struct {
	DB *sql.DB
	// Key keys the hashes that name the subjects in the table, so that no
	// address is stored. At least 32 bytes. Required.
	Key []byte
	// Recipient bounds the emails to one address, whatever causes them;
	// Account those about one user; Client those one client address
	// causes. A zero allowance is no limit on that subject.
	Recipient, Account, Client EmailAllowance
	// Now defaults to time.Now.
	Now func() time.Time
}

// Default allowances of the email budget.
var (
	DefaultEmailRecipient = EmailAllowance{Count: 3, Per: time.Hour}
	DefaultEmailAccount   = EmailAllowance{Count: 6, Per: time.Hour}
	DefaultEmailClient    = EmailAllowance{Count: 20, Per: time.Hour}
)

// Validate returns every problem of the configuration at once.
func (c EmailBudgetConfig) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("email budget: a database is required"))
	}
	if len(c.Key) < 32 {
		errs = append(errs, errors.New("email budget: the subjects' key must be at least 32 bytes"))
	}
	for _, a := range []EmailAllowance{c.Recipient, c.Account, c.Client} {
		if a.Count < 0 || a.Per < 0 || (a.Count > 0) != (a.Per > 0) {
			errs = append(errs, fmt.Errorf("email budget: want a count and a period, both positive or both zero, got %d per %s",
				a.Count, a.Per))
		}
	}
	return errors.Join(errs...)
}

// EmailBudget counts the emails the service is asked to send, per
// recipient address, per account and per client address, each in a window
// that starts with its first email, in the database so that every replica
// counts the same. A spend takes every subject's count in one transaction,
// each by one conditional UPDATE: of requests that race, only as many as
// the allowance holds are let through.
type EmailBudget struct {
	cfg     EmailBudgetConfig
	dialect sqldb.Dialect
	table   limitTable
	queries struct{ start, spend string }
}

// NewEmailBudget returns the budget.
func NewEmailBudget(cfg EmailBudgetConfig) (*EmailBudget, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := sqldb.Of(cfg.DB)
	b := &EmailBudget{cfg: cfg, dialect: d}
	b.queries.start = d.Rebind(d.InsertOrIgnore(
		`INSERT INTO email_budget (subject, sent, window_ends_ms) VALUES (?, 0, 0)`, "sent"))
	// A window that has ended starts anew with this email. MySQL runs the
	// assignments left to right: sent comes first, so that it still sees
	// the old window.
	set := `UPDATE email_budget SET
		sent = CASE WHEN window_ends_ms <= ? THEN ? ELSE sent + ? END,
		window_ends_ms = CASE WHEN window_ends_ms <= ? THEN ? ELSE window_ends_ms END
		WHERE subject = ?`
	b.queries.spend = d.Rebind(set + ` AND (window_ends_ms <= ? OR sent + ? <= ?)`)
	b.table = limitTable{db: cfg.DB, what: "count emails",
		refusal: "too many emails to this address, for this account or from this client, try again later",
		until:   d.Rebind(`SELECT window_ends_ms FROM email_budget WHERE subject = ?`)}
	return b, nil
}

// budgetSubject is one row an email counts on.
type budgetSubject struct {
	allowance EmailAllowance
	emails    int
}

// subjects are the rows that emails to recipients, about account, caused
// by client count on: one email each for every recipient, and as many as
// there are recipients for the account and the client. Subjects without an
// allowance, or without a name, are left out.
func (b *EmailBudget) subjects(account, client string, recipients []string) map[string]budgetSubject {
	out := map[string]budgetSubject{}
	add := func(kind, name string, allowance EmailAllowance, emails int) {
		if name == "" || allowance.Count == 0 {
			return
		}
		key := b.hash(kind, name)
		s := out[key]
		out[key] = budgetSubject{allowance: allowance, emails: s.emails + emails}
	}
	for _, to := range recipients {
		add("recipient", domain.EmailKey(to), b.cfg.Recipient, 1)
	}
	add("account", account, b.cfg.Account, len(recipients))
	add("client", client, b.cfg.Client, len(recipients))
	return out
}

func (b *EmailBudget) hash(kind, name string) string {
	return subjectKey(b.cfg.Key, "email-budget", kind, name)
}

// Spend counts one email to each recipient, about the account and caused
// by the client, all or none: a domain.KindTooMany error with the wait
// until the fullest subject's window ends when one would go over.
func (b *EmailBudget) Spend(ctx context.Context, account, client string, recipients ...string) error {
	return b.take(ctx, true, account, client, recipients)
}

// Count counts emails that are sent whatever the budget says (a welcome
// email): they use up the allowance of what may follow.
func (b *EmailBudget) Count(ctx context.Context, account, client string, recipients ...string) error {
	return b.take(ctx, false, account, client, recipients)
}

func (b *EmailBudget) take(ctx context.Context, bounded bool, account, client string, recipients []string) error {
	now := b.cfg.Now()
	nowMS := now.UnixMilli()
	subjects := b.subjects(account, client, recipients)
	if len(subjects) == 0 {
		return nil
	}
	if !bounded {
		return b.countAll(ctx, nowMS, subjects)
	}
	var rows []limitRow
	for key, s := range subjects {
		args := []any{nowMS, s.emails, s.emails, nowMS, nowMS + s.allowance.Per.Milliseconds(), key,
			nowMS, s.emails, s.allowance.Count}
		rows = append(rows, limitRow{key: key, prepare: []limitStatement{{b.queries.start, []any{key}}},
			count: limitStatement{b.queries.spend, args}})
	}
	return b.table.countAll(ctx, now, rows)
}

// countAll counts emails that nothing refuses in one statement, an upsert
// of every subject's row in key order (so that two counts never wait for
// each other's rows crosswise); a statement the database aborted is tried
// again.
func (b *EmailBudget) countAll(ctx context.Context, nowMS int64, subjects map[string]budgetSubject) error {
	keys := slices.Sorted(maps.Keys(subjects))
	values := make([]string, len(keys))
	args := make([]any, 0, 3*len(keys)+2)
	for i, key := range keys {
		s := subjects[key]
		values[i] = "(?, ?, ?)"
		args = append(args, key, s.emails, nowMS+s.allowance.Per.Milliseconds())
	}
	insert := `INSERT INTO email_budget (subject, sent, window_ends_ms) VALUES ` + strings.Join(values, ", ")
	// A window that has ended starts anew with these emails. MySQL runs
	// the assignments left to right: sent comes first, so that it still
	// sees the old window.
	var query string
	if b.dialect.Is(sqldb.MySQL) {
		query = insert + ` ON DUPLICATE KEY UPDATE
			sent = IF(window_ends_ms <= ?, VALUES(sent), sent + VALUES(sent)),
			window_ends_ms = IF(window_ends_ms <= ?, VALUES(window_ends_ms), window_ends_ms)`
	} else {
		query = insert + ` ON CONFLICT (subject) DO UPDATE SET
			sent = CASE WHEN email_budget.window_ends_ms <= ? THEN excluded.sent ELSE email_budget.sent + excluded.sent END,
			window_ends_ms = CASE WHEN email_budget.window_ends_ms <= ? THEN excluded.window_ends_ms
				ELSE email_budget.window_ends_ms END`
	}
	query = b.dialect.Rebind(query)
	args = append(args, nowMS, nowMS)
	for attempt := 1; ; attempt++ {
		_, err := b.cfg.DB.ExecContext(ctx, query, args...)
		if err == nil {
			return nil
		}
		if !sqldb.Transient(err) || attempt == limitAttempts || ctx.Err() != nil {
			return fmt.Errorf("count emails: %w", err)
		}
	}
}
