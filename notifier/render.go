package notifier

import (
	"fmt"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/shared/intent"
)

// render turns an intent into the customer's message. Plain English for now:
// per-locale templates are the seam for the templates package.
func render(in intent.Intent) channel.Message {
	m := channel.Message{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID}
	tail := lastDigits(in.ICCID, 4)
	switch in.Kind {
	case intent.Activation:
		m.Subject = "Your eSIM is active"
		m.Text = fmt.Sprintf("Your eSIM ending in %s is now active. Enjoy your trip!", tail)
	case intent.LowData:
		if in.Threshold >= 100 {
			m.Subject = "You have used all your data"
			m.Text = fmt.Sprintf("Your eSIM ending in %s has used all of its data. Top up to stay connected.", tail)
		} else {
			m.Subject = fmt.Sprintf("You have used %d%% of your data", in.Threshold)
			m.Text = fmt.Sprintf("Your eSIM ending in %s has used %d%% of its data.", tail, in.Threshold)
		}
	case intent.ValidityLow:
		m.Subject = "Your eSIM plan expires soon"
		m.Text = fmt.Sprintf("Your eSIM ending in %s expires in %d day(s).", tail, in.RemainDays)
	default:
		m.Subject = "eSIM update"
		m.Text = fmt.Sprintf("There is news about your eSIM ending in %s.", tail)
	}
	return m
}

func lastDigits(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
