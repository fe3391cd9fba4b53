-- AlterTable
-- Written with `prisma migrate dev --create-only` and edited by hand: a required column without a
-- default cannot be added to a table holding rows, so existing entries are filled first.
ALTER TABLE "waitlist_entries" ADD COLUMN     "source" TEXT;
UPDATE "waitlist_entries" SET "source" = 'web';
ALTER TABLE "waitlist_entries" ALTER COLUMN "source" SET NOT NULL;
