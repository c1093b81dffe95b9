// Command msctl builds, deploys and canaries Go microservices on Kubernetes
// with Istio. Everything lives in internal/cli; main only exits with its code.
package main

import (
	"os"

	"github.com/msctl/msctl/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
