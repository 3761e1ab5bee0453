package apitest

import (
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every operation of the contract declares its security: the schemes that
// open it (bearerAuth, a user's session; adminToken, ADMIN_TOKEN), or an
// empty list for a public one. One that left it out would fall back to the
// document's security, which the contract does not set: public by
// omission, where the service may well ask for a credential.
func TestContract_EveryOperationDeclaresItsSecurity(t *testing.T) {
	contract, err := Load()
	require.NoError(t, err)
	for _, problem := range securityProblems(contract.doc) {
		t.Error(problem)
	}
}

// securityProblems finds an operation without security and a scheme that
// components.securitySchemes does not define.
func TestSecurityProblems(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData([]byte(`
openapi: 3.1.0
info: {title: t, version: "1"}
paths:
  /public:
    get:
      security: []
      responses: {'200': {description: ok}}
  /secured:
    get:
      security: [{bearerAuth: []}]
      responses: {'200': {description: ok}}
    put:
      responses: {'200': {description: ok}}
    delete:
      security: [{bearerAuth: []}, {operatorToken: []}]
      responses: {'204': {description: ok}}
components:
  securitySchemes:
    bearerAuth: {type: http, scheme: bearer}
`))
	require.NoError(t, err)
	assert.Equal(t, []string{
		"DELETE /secured: names operatorToken, which components.securitySchemes does not define",
		"PUT /secured: declares no security (security: [] for a public operation)",
	}, securityProblems(doc))
}

// securityProblems lists, sorted, the operations of doc that declare no
// security of their own and those that name an undefined scheme.
func securityProblems(doc *openapi3.T) []string {
	var problems []string
	for path, item := range doc.Paths.Map() {
		for method, operation := range item.Operations() {
			name := method + " " + path
			if operation.Security == nil {
				problems = append(problems, name+": declares no security (security: [] for a public operation)")
				continue
			}
			for _, requirement := range *operation.Security {
				for scheme := range requirement {
					if doc.Components == nil || doc.Components.SecuritySchemes[scheme] == nil {
						problems = append(problems,
							name+": names "+scheme+", which components.securitySchemes does not define")
					}
				}
			}
		}
	}
	slices.Sort(problems)
	return problems
}
