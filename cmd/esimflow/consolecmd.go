package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/esimflow/esimflow/cmd/esimflow/console"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/httpserve"
	"github.com/esimflow/esimflow/shared/service"
	"github.com/spf13/cobra"
)

// newConsoleCmd serves the operator console in front of services that run
// apart. The all-in-one serves it on its own admin listener; this is for
// the processor and notifier as separate processes (docs/adr/0007).
func newConsoleCmd(getenv func(string) string) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Serve the operator console in front of separately run services' internal APIs",
		Long: "Console serves the operator console (the all-in-one serves it itself at /console/) for\n" +
			"services that run apart: give every service's internal API with --api (the processor's\n" +
			"and the notifier's at least); each page asks the service that has the route, with the\n" +
			"operator's token. Beyond loopback it needs ESIMFLOW_ADMIN_TOKEN, like the API.",
		Args: cobra.NoArgs,
	}
	api := newAPIFlags(cmd, getenv)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8090", "address the console listens on")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		cfg, err := config.Load(getenv)
		if err != nil {
			return fmt.Errorf("configuration: %w", err)
		}
		clients, err := api.clients()
		if err != nil {
			return err
		}
		exposed := cfg.Admin
		exposed.Addr, exposed.Token = listen, clients[0].token
		if err := exposed.CheckExposure(); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
		var bases []string
		for _, c := range clients {
			bases = append(bases, c.base)
		}
		log := service.Logger(cfg.Log)
		// The console's own server: the Host check, the session route behind
		// the token and its failed-attempt limit; the pages' API calls go to
		// the services.
		local := admin.NewWithOptions(admin.Options{Token: exposed.Token, HostCheck: true, RequestHeaderCheck: true,
			ListenAddr: listen, AllowedHosts: cfg.Admin.AllowedHosts})
		apiMux := http.NewServeMux()
		apiMux.Handle(console.SessionRoute, local.Handler())
		apiMux.Handle("/", console.Services(bases, &http.Client{Timeout: api.timeout}))
		con, err := console.New(console.Options{API: apiMux, TokenRequired: exposed.Token != "", Logger: log})
		if err != nil {
			return err
		}
		con.Register(local)
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("listen %s: %w", listen, err)
		}
		log.Info("console", "addr", ln.Addr().String(), "access", exposed.Exposure(), "apis", bases)
		fmt.Fprintf(cmd.ErrOrStderr(), "console at http://%s/console/ — Ctrl-C stops\n", ln.Addr())
		srv := &http.Server{Handler: local.Handler(), ReadHeaderTimeout: 5 * time.Second}
		return httpserve.Run(ctx, srv, ln)
	}
	return cmd
}
