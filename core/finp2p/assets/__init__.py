"""Resources and assets: resource ids, managed assets, transfer routing, receipts, balances."""
