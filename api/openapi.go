// Package api holds the contract of onboard's HTTP API, openapi.yaml
// (OpenAPI 3.1), embedded: the service serves it at GET /openapi.yaml and
// the tests validate their requests and responses against it.
package api

import _ "embed"

//go:embed openapi.yaml
var openAPI string

// OpenAPI returns the contract, an OpenAPI 3.1 document in YAML.
func OpenAPI() string { return openAPI }
