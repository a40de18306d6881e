"""The command line's sub-commands beyond running the daemon: admin,
backtest, explain, report, sites, simulate (`towerco_notify.cli` dispatches)."""
