package chaos

import (
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/storeopen"
	"github.com/redis/go-redis/v9"
)

// redisClient opens the run's Redis as the services do: one node, or a
// Redis Cluster for a redis+cluster:// URL.
func redisClient(url string) (redis.UniversalClient, error) {
	c, _, err := storeopen.Client(config.Store{URL: url})
	return c, err
}
