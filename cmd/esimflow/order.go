package main

import (
	"net/url"

	"github.com/spf13/cobra"
)

func newOrderCmd(getenv func(string) string) *cobra.Command {
	var f opFlags
	cmd := &cobra.Command{
		Use:   "order ORDER_NO",
		Short: "Show an order's state (GET /v1/orders/{orderNo} of the internal API)",
		Long: "Order prints what esimflow knows of an order: status, transaction id, its profiles' iccids\n" +
			"and the status history, as a table or, with --json, as the API answers. It exits non-zero\n" +
			"when the order is unknown.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return getEntity(cmd, &f, "order", args[0], "/v1/orders/"+url.PathEscape(args[0]))
		},
	}
	f.register(cmd, getenv)
	return cmd
}
