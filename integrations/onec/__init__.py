"""1C: stock from its HTTP service (`onec-stock`), its push webhook and the CommerceML 2
"exchange with a site" that every 1C trade configuration already speaks. A wing of its own:
client, mapping, jobs, webhooks, exchange, models, admin and migrations live here."""
