package main

import (
	"net/url"

	"github.com/spf13/cobra"
)

func newProfileCmd(getenv func(string) string) *cobra.Command {
	var f opFlags
	cmd := &cobra.Command{
		Use:   "profile ICCID",
		Short: "Show an eSIM profile's state (GET /v1/profiles/{iccid} of the internal API)",
		Long: "Profile prints what esimflow knows of an eSIM profile: status, order, data usage and the\n" +
			"status history, as a table or, with --json, as the API answers. It exits non-zero when\n" +
			"the profile is unknown.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return getEntity(cmd, &f, "profile", args[0], "/v1/profiles/"+url.PathEscape(args[0]))
		},
	}
	f.register(cmd, getenv)
	return cmd
}
