package deps
import (
 _ "github.com/jackc/pgx/v5/pgxpool"
 _ "github.com/testcontainers/testcontainers-go/modules/postgres"
)
