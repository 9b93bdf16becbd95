"""PyGithub against forgebridge's GitHub dialect (base_url = PROXY/api/v3).

Usage: python github_pygithub.py --base http://127.0.0.1:PORT --upstream github|gitea|gitlab

Expects the seed of tests/common/mod.rs: users alice, bob, carol, dave (token <login>-token),
site admin token test-admin-token; orgs acme (owner alice, member bob, public member alice),
widgets (owner alice, member carol), hidden (private, owner carol).

PyGithub builds follow-up request paths from the `url` fields it gets back and asserts that they
share the base URL's host, port and path prefix, so every call after the first also checks the
proxy's URL rewriting.
"""

from importlib.metadata import version

from github import Auth, Github, GithubException

from fbcheck import Run, parse_args, unsupported_message

CLIENT = f"PyGithub {version('PyGithub')}"


def error_of(e):
    """(status, body) of a PyGithub HTTP error, None for anything else."""
    if isinstance(e, GithubException):
        return e.status, e.data
    return None


def main():
    args = parse_args(__doc__)
    run = Run(CLIENT, args.upstream)
    api = args.base + "/api/v3"

    def client(token, per_page=1):
        # per_page=1 so that every list below really spans several pages.
        # No client-side throttling (PyGithub waits 0.25 s between requests, 1 s between writes).
        return Github(
            base_url=api,
            auth=Auth.Token(token),
            per_page=per_page,
            retry=None,
            timeout=30,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )

    admin = client(args.admin_token)
    alice = client(args.alice_token)
    bob = client(args.bob_token)

    def expect_501(call, fn, op):
        """The GitHub dialect's 501: PyGithub raises GithubException(501) with GitHub's error body."""
        body = run.expect_error(
            call, fn, 501, error_of, message_contains=unsupported_message(op, args.upstream)
        )
        run.true(
            f"{call} 501 body has GitHub's error shape",
            isinstance(body, dict) and "message" in body and "documentation_url" in body,
            body,
        )

    # ------------------------------------------------------------------ get an org
    def get_org():
        org = alice.get_organization("acme")
        run.eq("get_organization('acme').login", run.call("org.login", lambda: org.login), "acme")
        run.eq("get_organization('acme').name", run.call("org.name", lambda: org.name), "Acme")
        run.eq("get_organization('acme').description", org.description, "Rockets")
        run.true("get_organization('acme').id is an int", isinstance(org.id, int), org.id)
        run.url_on_proxy("get_organization('acme').url", org.url, api + "/orgs/acme")
        run.eq("get_organization('acme').type", org.type, "Organization")

    run.section("get_organization", get_org)

    # ------------------------------------------------------------------ the caller's orgs, paginated
    def my_orgs():
        orgs = alice.get_user().get_orgs()
        first = run.call("get_user().get_orgs().get_page(0)", lambda: orgs.get_page(0))
        run.eq("len(get_user().get_orgs().get_page(0)) with per_page=1", len(first), 1)
        logins = run.call("list(get_user().get_orgs())", lambda: [o.login for o in orgs])
        run.eq("list(get_user().get_orgs()) (alice, per_page=1)", sorted(logins), ["acme", "widgets"])
        run.eq("get_user().get_orgs().totalCount", run.call("totalCount", lambda: orgs.totalCount), 2)
        # Items of a list must carry a url PyGithub can complete them from.
        acme = [o for o in orgs if o.login == "acme"][0]
        run.url_on_proxy("get_user().get_orgs() item url", acme.url, api + "/orgs/acme")
        # `name` is not in a list item: PyGithub completes the item by GETting its url.
        run.eq("get_user().get_orgs() item .name (completed from its url)", run.call("item.name", lambda: acme.name), "Acme")

        # GET /users/{user}/orgs lists only the user's public memberships (alice: public in acme).
        call = "get_user('alice').get_orgs() as bob"
        if run.supported("org.list_for_user"):
            public = run.call(call, lambda: [o.login for o in bob.get_user("alice").get_orgs()])
            run.eq(call, public, ["acme"])
            run.eq(
                "get_user('carol').get_orgs() as alice (no public memberships)",
                run.call("get_user('carol').get_orgs()", lambda: [o.login for o in alice.get_user("carol").get_orgs()]),
                [],
            )
        else:
            expect_501(call, lambda: list(bob.get_user("alice").get_orgs()), "org.list_for_user")

    run.section("get_user().get_orgs", my_orgs)

    # ------------------------------------------------------------------ all orgs with a since cursor
    def all_orgs():
        everything = admin.get_organizations()
        first = run.call("get_organizations().get_page(0)", lambda: everything.get_page(0))
        run.eq("len(get_organizations().get_page(0)) with per_page=1", len(first), 1)
        orgs = run.call("list(get_organizations())", lambda: list(everything))
        logins = [o.login for o in orgs]
        run.eq("list(get_organizations()) as site admin (per_page=1)", logins, ["acme", "widgets", "hidden"])
        ids = [o.id for o in orgs]
        run.eq("get_organizations() ids ascending", ids, sorted(ids))
        after_acme = run.call(
            f"get_organizations(since={ids[0]})",
            lambda: [o.login for o in admin.get_organizations(since=ids[0])],
        )
        run.eq(f"get_organizations(since={ids[0]}) (acme's id)", after_acme, ["widgets", "hidden"])
        after_all = run.call(
            f"get_organizations(since={ids[-1]})",
            lambda: [o.login for o in admin.get_organizations(since=ids[-1])],
        )
        run.eq(f"get_organizations(since={ids[-1]}) (the last id)", after_all, [])
        visible = run.call("get_organizations() as dave", lambda: [o.login for o in client(args.dave_token).get_organizations()])
        run.eq("get_organizations() as dave (no private orgs)", visible, ["acme", "widgets"])

    run.section("get_organizations(since=...)", all_orgs)

    # ------------------------------------------------------------------ edit
    def edit():
        org = alice.get_organization("widgets")
        run.call("get_organization('widgets').name", lambda: org.name)  # complete: org.url from the answer
        run.url_on_proxy("widgets.url", org.url, api + "/orgs/widgets")
        run.call(
            "widgets.edit(description=, name=)",
            lambda: org.edit(description="Gadgets and gizmos", name="Widgets Inc"),
        )
        run.eq("widgets.description after edit()", org.description, "Gadgets and gizmos")
        run.eq("widgets.name after edit()", org.name, "Widgets Inc")
        again = admin.get_organization("widgets")
        run.eq("get_organization('widgets').description re-read", again.description, "Gadgets and gizmos")
        run.eq("get_organization('widgets').name re-read", again.name, "Widgets Inc")
        # A member who is no owner may not edit.
        as_carol = client(args.carol_token).get_organization("widgets")
        run.expect_error(
            "widgets.edit(description=) as carol (member)",
            lambda: as_carol.edit(description="nope"),
            403,
            error_of,
        )

    run.section("Organization.edit", edit)

    # ------------------------------------------------------------------ members
    def members():
        org = alice.get_organization("acme")
        logins = run.call("acme.get_members()", lambda: sorted(u.login for u in org.get_members()))
        run.eq("acme.get_members() (per_page=1)", logins, ["alice", "bob"])
        first = org.get_members().get_page(0)
        run.eq("len(acme.get_members().get_page(0))", len(first), 1)
        run.url_on_proxy("acme.get_members() item url", first[0].url, api + "/users/")

        def role_filter():
            admins = run.call("acme.get_members(role='admin')", lambda: [u.login for u in org.get_members(role="admin")])
            run.eq("acme.get_members(role='admin')", admins, ["alice"])

        role_filter()

        bob_user = run.call("get_user('bob')", lambda: alice.get_user("bob"))
        dave_user = run.call("get_user('dave')", lambda: alice.get_user("dave"))
        run.eq("acme.has_in_members(bob)", run.call("has_in_members(bob)", lambda: org.has_in_members(bob_user)), True)
        run.eq("acme.has_in_members(dave)", run.call("has_in_members(dave)", lambda: org.has_in_members(dave_user)), False)

        # Adding a member goes through PUT /orgs/{org}/memberships/{user} (member.set_role).
        call = "acme.add_to_members(dave, role='member')"
        if run.supported("member.set_role"):
            run.call(call, lambda: org.add_to_members(dave_user, role="member"))
            run.eq("acme.has_in_members(dave) after add", org.has_in_members(dave_user), True)
            run.call("acme.remove_from_members(dave)", lambda: org.remove_from_members(dave_user))
            run.eq("acme.has_in_members(dave) after remove", org.has_in_members(dave_user), False)
        else:
            expect_501(call, lambda: org.add_to_members(dave_user, role="member"), "member.set_role")

        # Removing a member works on every upstream: carol leaves widgets.
        widgets = alice.get_organization("widgets")
        carol_user = alice.get_user("carol")
        run.call("widgets.remove_from_members(carol)", lambda: widgets.remove_from_members(carol_user))
        run.eq("widgets.has_in_members(carol) after remove", widgets.has_in_members(carol_user), False)
        run.eq("widgets.get_members() after remove", sorted(u.login for u in widgets.get_members()), ["alice"])

    run.section("members", members)

    # ------------------------------------------------------------------ public members
    def public_members():
        org = alice.get_organization("acme")
        as_bob = bob.get_organization("acme")
        bob_user = bob.get_user("bob")
        if not run.supported("public_member.list"):
            expect_501("acme.get_public_members()", lambda: list(org.get_public_members()), "public_member.list")
            expect_501(
                "acme.add_to_public_members(bob) as bob",
                lambda: as_bob.add_to_public_members(bob_user),
                "public_member.publicize",
            )
            expect_501(
                "acme.remove_from_public_members(bob) as bob",
                lambda: as_bob.remove_from_public_members(bob_user),
                "public_member.conceal",
            )
            # has_in_public_members() maps every non-204 to False, so look at the status itself.
            status, _, data = bob.requester.requestJson("GET", org.url + "/public_members/alice")
            run.eq("GET acme/public_members/alice status (has_in_public_members)", status, 501)
            return
        logins = run.call("acme.get_public_members()", lambda: [u.login for u in org.get_public_members()])
        run.eq("acme.get_public_members()", logins, ["alice"])
        run.eq("acme.has_in_public_members(bob)", org.has_in_public_members(bob_user), False)
        run.call("acme.add_to_public_members(bob) as bob", lambda: as_bob.add_to_public_members(bob_user))
        run.eq("acme.has_in_public_members(bob) after add", org.has_in_public_members(bob_user), True)
        logins = sorted(u.login for u in alice.get_organization("acme").get_public_members())
        run.eq("acme.get_public_members() after add (per_page=1)", logins, ["alice", "bob"])
        run.call("acme.remove_from_public_members(bob) as bob", lambda: as_bob.remove_from_public_members(bob_user))
        run.eq("acme.has_in_public_members(bob) after remove", org.has_in_public_members(bob_user), False)
        logins = [u.login for u in alice.get_organization("acme").get_public_members()]
        run.eq("acme.get_public_members() after remove", logins, ["alice"])

    run.section("public members", public_members)

    # ------------------------------------------------------------------ activity
    def activity():
        org = alice.get_organization("acme")
        if run.supported("activity.list"):
            events = run.call("acme.get_events()", lambda: list(org.get_events()))
            # A Gitea upstream's feed holds repository activities only: the reference forge's
            # organization events have no Gitea op_type, so there it may be empty.
            if args.upstream != "gitea":
                run.true("acme.get_events() is not empty", len(events) > 0, events)
            run.true(
                "acme.get_events() items have a type",
                all(isinstance(e.type, str) and e.type.endswith("Event") for e in events),
                [e.type for e in events],
            )
        else:
            expect_501("acme.get_events()", lambda: list(org.get_events()), "activity.list")

    run.section("activity", activity)

    # ------------------------------------------------------------------ Enterprise admin create and rename
    def enterprise_admin():
        req = admin.requester
        call = "requester.requestJsonAndCheck('POST', '/admin/organizations')"
        headers, data = run.call(
            call,
            lambda: req.requestJsonAndCheck(
                "POST",
                "/admin/organizations",
                input={"login": "pyghco", "admin": "alice", "profile_name": "PyGithub Co"},
            ),
        )
        run.eq(call + " login", data.get("login"), "pyghco")
        run.url_on_proxy(call + " url", data.get("url"), api + "/orgs/pyghco")
        run.url_on_proxy(call + " Location", headers.get("location"), api + "/orgs/pyghco")
        org = alice.get_organization("pyghco")
        run.eq("get_organization('pyghco').name", run.call("pyghco.name", lambda: org.name), "PyGithub Co")
        alice_user = alice.get_user("alice")
        run.eq("pyghco.has_in_members(alice) (the named admin)", org.has_in_members(alice_user), True)

        call = "requester.requestJsonAndCheck('PATCH', '/admin/organizations/pyghco')"
        headers, data = run.call(
            call,
            lambda: req.requestJsonAndCheck("PATCH", "/admin/organizations/pyghco", input={"login": "pyghco2"}),
        )
        run.true(call + " message", "Job queued to rename organization" in str(data.get("message")), data)

        def answer_points_at_the_org():
            # GitHub's answer points at the org by id; a client can follow it.
            run.url_on_proxy(call + " url", data.get("url"), api + "/organizations/")
            run.true(call + " url ends in the org's id", data["url"].rstrip("/").split("/")[-1].isdigit(), data)
            by_id = run.call("GET " + data["url"], lambda: req.requestJsonAndCheck("GET", data["url"]))[1]
            run.eq("GET " + data["url"] + " login", by_id.get("login"), "pyghco2")

        answer_points_at_the_org()
        renamed = alice.get_organization("pyghco2")
        run.eq("get_organization('pyghco2').name", run.call("pyghco2.name", lambda: renamed.name), "PyGithub Co")
        run.expect_error(
            "get_organization('pyghco').login after rename",
            lambda: alice.get_organization("pyghco").name,
            404,
            error_of,
        )
        # A site administrator's call; others are answered 404 as GitHub does.
        def non_admin_refused():
            run.expect_error(
                "requester.requestJsonAndCheck('POST', '/admin/organizations') as alice (no site admin)",
                lambda: alice.requester.requestJsonAndCheck(
                    "POST", "/admin/organizations", input={"login": "nope", "admin": "alice"}
                ),
                404,
                error_of,
            )

        non_admin_refused()
        # Conflict in GitHub's validation shape.
        body = run.expect_error(
            "requester.requestJsonAndCheck('POST', '/admin/organizations') for an existing login",
            lambda: req.requestJsonAndCheck("POST", "/admin/organizations", input={"login": "acme", "admin": "alice"}),
            422,
            error_of,
        )
        run.eq("422 body message", body.get("message"), "Validation Failed")

        call = "requester.requestJsonAndCheck('DELETE', '/orgs/pyghco2')"
        status, _, _ = run.call(call, lambda: req.requestJson("DELETE", "/orgs/pyghco2"))
        run.eq(call + " status", status, 202)
        run.expect_error(
            "get_organization('pyghco2') after delete",
            lambda: admin.get_organization("pyghco2").name,
            404,
            error_of,
        )

    run.section("Enterprise admin create/rename (raw requester)", enterprise_admin)

    run.finish()


if __name__ == "__main__":
    main()
