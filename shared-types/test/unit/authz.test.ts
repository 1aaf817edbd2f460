import { expect } from 'chai';
import { authorize, can, permissionsFor } from '../../src/authz.ts';
import { ApiError } from '../../src/errors.ts';
import { testActor } from '../../src/testing/index.ts';

describe('authorization table', () => {
  const admin = testActor('admin');
  const supervisor = testActor('supervisor');
  const student = testActor('enduser');
  const stranger = testActor('enduser');

  it('lets admins do everything', () => {
    expect(can(admin, 'credits:deduct', { ownerId: student.userId })).to.equal(true);
    expect(can(admin, 'relationships:manage')).to.equal(true);
  });

  it('lets an owner read its own credits but not another user', () => {
    expect(can(student, 'credits:read', { ownerId: student.userId })).to.equal(true);
    expect(can(stranger, 'credits:read', { ownerId: student.userId })).to.equal(false);
    expect(can(student, 'credits:allocate', { ownerId: student.userId })).to.equal(false);
  });

  it('lets a supervisor act on a student only when it supervises the owner', () => {
    expect(can(supervisor, 'chat:interrupt', { ownerId: student.userId, supervisorOfOwner: true })).to.equal(true);
    expect(can(supervisor, 'chat:interrupt', { ownerId: student.userId, supervisorOfOwner: false })).to.equal(false);
    expect(can(supervisor, 'chat:interrupt', { ownerId: student.userId })).to.equal(false);
    expect(can(supervisor, 'chat:interrupt', { ownerId: supervisor.userId, supervisorOfOwner: true })).to.equal(false);
  });

  it('asks the relationship check only when the decision depends on it', async () => {
    let asked = 0;
    const check = async () => {
      asked += 1;
      return true;
    };
    await authorize(student, 'credits:read', { ownerId: student.userId }, check);
    expect(asked).to.equal(0);
    await authorize(supervisor, 'credits:allocate', { ownerId: student.userId }, check);
    expect(asked).to.equal(1);
    const refused = await authorize(stranger, 'credits:allocate', { ownerId: student.userId }, check).catch((e: unknown) => e);
    expect(refused).to.be.instanceOf(ApiError);
    expect((refused as ApiError).code).to.equal('FORBIDDEN');
    expect(asked).to.equal(1);
  });

  it('lists permissions per role', () => {
    const enduser = permissionsFor('enduser').map((p) => p.action);
    expect(enduser).to.include('chat:use');
    expect(enduser).not.to.include('users:list');
    expect(permissionsFor('admin').length).to.be.greaterThan(enduser.length);
  });
});
