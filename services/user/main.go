// Command user is the user service: accounts and their activity stream,
// over gRPC (GRPC_ADDR, :9090), HTTP/JSON (HTTP_ADDR, :8080) and an admin
// port (ADMIN_ADDR, :8081: /metrics, /health/*, /debug/breakers).
//
// With no environment it keeps its data in a SQLite file in the user's
// cache directory. Run it with --dev to get a locally signed admin token.
package main

import (
	"io"
	"os"

	"github.com/msctl/msctl/services/kit/command"
	"github.com/msctl/msctl/services/user/internal/app"
)

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

func run(args []string, lookup command.Lookup, stdout, stderr io.Writer) int {
	return command.Run(command.Service[app.Config, *app.App]{
		Name: app.Name, DevPath: "/api/v1/users", Load: app.LoadConfig, New: app.New,
	}, args, lookup, stdout, stderr)
}
