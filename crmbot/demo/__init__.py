"""`crmbot demo`: the whole bot in a terminal, no Slack workspace needed.

The console (console.py, modals.py) plays a person in Slack: it sends what Slack would send
to the real app's /slack/events (slack_side.py) and shows what the app sends back to the Slack
Web API, which is answered locally by a strict fake (fakeslack.py, also the tests' fake) and
drawn as terminal text (transcript.py, terminal.py, forms.py). runtime.py starts it all on a
seeded SQLite database (seed.py); main.py is the `crmbot demo` command.
"""
