//go:build !failpoints

package processor

import "github.com/esimflow/esimflow/shared/consume"

// Without the failpoints tag the chaos suite's decorators are the identity:
// production builds carry neither its crash points nor its planted bugs.

func failpointStore(s Store) Store                                      { return s }
func failpointPublisher(p Publisher) Publisher                          { return p }
func failpointHandler(h consume.Handler) consume.Handler                { return h }
func failpointBatchHandler(h consume.BatchHandler) consume.BatchHandler { return h }
