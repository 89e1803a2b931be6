package admin_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/gworker/gworker/admin"
	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
)

// The admin page mounted under /admin in an application's own server.
func Example() {
	ctx := context.Background()
	dbURL, drop, err := pgtest.Database(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer drop()
	db, err := pgxdriver.Open(ctx, dbURL)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	utils, err := core.NewUtils(db, core.UtilsOptions{Schema: "admin_example"})
	if err != nil {
		log.Fatal(err)
	}
	if err := utils.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	h, err := admin.NewHandler(utils, admin.Options{
		Prefix: "/admin",
		Auth:   admin.Basic(admin.BasicUser{Name: "ops", Password: "correct horse battery staple", Role: admin.RoleOperator}),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", h)
	web := httptest.NewServer(mux) // http.ListenAndServe(":8080", mux) in an application
	defer web.Close()

	req, _ := http.NewRequest("GET", web.URL+"/admin/api/v1/stats", nil)
	req.SetBasicAuth("ops", "correct horse battery staple")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(res.Status)
	// Output: 200 OK
}
