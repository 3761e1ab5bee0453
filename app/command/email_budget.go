package command

import "context"

// EmailBudget bounds the emails the service sends: per recipient address,
// per account and per client address, in a window.
type EmailBudget interface {
	// Spend counts one email to each recipient, about the account and
	// caused by the client, all or none, atomically where requests race: a
	// domain error of kind KindTooMany, with its wait, when one would go
	// over.
	Spend(ctx context.Context, account, client string, recipients ...string) error
	// Count counts emails sent whatever the budget says (a welcome email):
	// they use up the allowance of what may follow.
	Count(ctx context.Context, account, client string, recipients ...string) error
}

// NoEmailBudget counts nothing and refuses nothing (EMAIL_BUDGET=off).
type NoEmailBudget struct{}

// Spend refuses nothing.
func (NoEmailBudget) Spend(context.Context, string, string, ...string) error { return nil }

// Count counts nothing.
func (NoEmailBudget) Count(context.Context, string, string, ...string) error { return nil }
