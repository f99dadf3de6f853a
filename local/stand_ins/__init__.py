"""Stand-ins for what the function talks to.

The Reply simulator, the AWS stack on moto, the event source mapping and the fault proxy.
"""
