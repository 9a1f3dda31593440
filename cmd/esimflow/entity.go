package main

import (
	"net/url"

	"github.com/spf13/cobra"
)

func newOrderCmd(getenv func(string) string) *cobra.Command {
	return newEntityCmd(getenv, "order", "ORDER_NO", "/v1/orders/",
		"Show an order's state (GET /v1/orders/{orderNo} of the internal API)",
		"Order prints what esimflow knows of an order: status, transaction id, its profiles' iccids\n"+
			"and the status history, as a table or, with --json, as the API answers. It exits non-zero\n"+
			"when the order is unknown.")
}

func newProfileCmd(getenv func(string) string) *cobra.Command {
	return newEntityCmd(getenv, "profile", "ICCID", "/v1/profiles/",
		"Show an eSIM profile's state (GET /v1/profiles/{iccid} of the internal API)",
		"Profile prints what esimflow knows of an eSIM profile: status, order, data usage and the\n"+
			"status history, as a table or, with --json, as the API answers. It exits non-zero when\n"+
			"the profile is unknown.")
}

// newEntityCmd reads one entity of the state API by its id.
func newEntityCmd(getenv func(string) string, what, arg, route, short, long string) *cobra.Command {
	var asJSON bool
	var api *apiFlags
	cmd := &cobra.Command{
		Use:   what + " " + arg,
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			clients, err := api.clients()
			if err != nil {
				return err
			}
			return getEntity(cmd, clients, asJSON, what, args[0], route+url.PathEscape(args[0]))
		},
	}
	api = newAPIFlags(cmd, getenv)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}
