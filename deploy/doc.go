// Package deploy holds onboard's Kubernetes manifests (`kubectl apply -k
// deploy/`) and, in its tests, their checks, with the Dockerfile's and
// docker-compose.yml's: each manifest decodes strictly into its Kubernetes
// type, and what they set agrees with the service's configuration, its
// probes and the length of its stop. It has no code of its own.
package deploy
