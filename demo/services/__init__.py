"""The demo shop: small real services, each run as its own process under `tracehouse-agent run`.

    gateway -> orders -> inventory
                      -> payments -> notifications (-> orders, with --cycle)

None of them contains tracing code; the agent adds it.
"""
