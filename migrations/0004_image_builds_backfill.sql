-- Custom migration (hand-written): images uploaded before builds existed are still
-- pending; queue a build for each, as an upload now does.
INSERT INTO "image_builds" ("image_id") SELECT "image_id" FROM "images" WHERE "status" = 'pending' ON CONFLICT DO NOTHING;
