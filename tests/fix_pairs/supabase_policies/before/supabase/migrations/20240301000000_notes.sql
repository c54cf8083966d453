create table public.notes (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id),
  team_id uuid not null,
  body text not null
);
create index notes_user_id on public.notes (user_id);
create index notes_team_id on public.notes (team_id);
alter table public.notes enable row level security;

-- The call per row, written the way the Supabase quickstart first shows it.
create policy "owners read" on public.notes for select to authenticated
  using (auth.uid() = user_id);

create policy "owners write" on public.notes for update to authenticated
  using (user_id = auth.uid())
  with check (user_id = AUTH.UID());

-- Already wrapped: left as it is.
create policy "owners insert" on public.notes for insert to authenticated
  with check ((select auth.uid()) = user_id);

-- Inside a sub-select with FROM the call still runs per row of members.
create policy "team read" on public.notes for select to authenticated
  using (team_id in (select m.team_id from members m where m.user_id = auth.uid()));

-- A JWT claim, read per row.
create policy "admins delete" on public.notes for delete to authenticated
  using ((auth.jwt() ->> 'role') = 'admin');
