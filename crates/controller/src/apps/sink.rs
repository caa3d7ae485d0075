//! The sink an app compiles into: it knows the app, stamps the app into every flow's
//! cookie, and checks (in debug builds, so in every test) that each flow is in a table the
//! app declared and goes only to tables the pipeline allows next.

use super::{App, Compiled, Flow, Group, Meter, check, check_group, flow, keyed_flow};
use crate::pipeline::App as AppId;
use crate::reconcile::FlowKey;
use openflow::Instruction;
use openflow::oxm::Match;

/// Where one app's flows and groups for one owner go.
pub struct Sink<'a> {
    app: AppId,
    tables: &'static [u8],
    out: &'a mut Compiled,
}

impl<'a> Sink<'a> {
    pub(super) fn new(app: &dyn App, out: &'a mut Compiled) -> Self {
        Sink {
            app: app.id(),
            tables: app.tables(),
            out,
        }
    }

    /// The app whose flows this sink takes.
    pub fn app(&self) -> AppId {
        self.app
    }

    /// A flow in `table` at `priority`, its cookie naming this app and the object `key`.
    pub fn flow(
        &mut self,
        table: u8,
        priority: u16,
        m: Match,
        key: u32,
        instructions: impl AsRef<[Instruction]>,
    ) {
        self.push(flow(table, priority, m, self.app, key, instructions));
    }

    /// [`Sink::flow`] with its key already made.
    pub fn keyed(&mut self, k: FlowKey, key: u32, instructions: impl AsRef<[Instruction]>) {
        self.push(keyed_flow(k, self.app, key, instructions));
    }

    /// A flow made elsewhere (a shared primitive), checked like the others.
    pub fn push(&mut self, f: Flow) {
        if cfg!(debug_assertions) {
            self.check(&f);
        }
        self.out.flows.push(f);
    }

    pub fn extend(&mut self, flows: impl IntoIterator<Item = Flow>) {
        for f in flows {
            self.push(f);
        }
    }

    pub fn group(&mut self, g: Group) {
        if cfg!(debug_assertions)
            && let Err(e) = check_group(&g)
        {
            panic!("app {:?}: {e}", self.app);
        }
        self.out.groups.push(g);
    }

    /// A meter the app's flows name (`Instruction::Meter`).
    pub fn meter(&mut self, m: Meter) {
        self.out.meters.push(m);
    }

    fn check(&self, f: &Flow) {
        let t = f.key.table();
        assert!(
            self.tables.contains(&t),
            "app {:?} wrote a flow in table {t}, which it does not declare: {f:?}",
            self.app
        );
        if let Err(e) = check(f) {
            panic!("app {:?}: {e}: {f:?}", self.app);
        }
        let cookie = crate::pipeline::Cookie::decode(f.body.cookie);
        assert_eq!(
            cookie.map(|c| c.app),
            Some(self.app),
            "app {:?} wrote a flow with another app's cookie: {f:?}",
            self.app
        );
    }
}
